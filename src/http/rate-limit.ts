// Token buckets per client: one per access token (its hash), else one per IP. A request with a
// token also spends from its IP's ceiling (RATE_LIMIT_IP_MULTIPLIER times higher), so rotating
// made-up tokens does not escape the limit.
// Over a limit, the request gets 429 RATE_LIMITED with Retry-After and reaches no upstream.
import { createHash } from 'node:crypto';
import type { Plugin } from 'graphql-yoga';
import type { IncomingMessage } from 'node:http';
import type { GatewayMetrics } from '../observability/metrics.ts';
import { graphqlErrorResponse } from './responses.ts';

const MAX_CLIENTS = 100_000;

export interface RateLimitOptions {
  perMinute: number;
  burst: number;
  /** The per-IP bucket allows this many times the per-token rate and burst. */
  ipMultiplier: number;
  trustProxy: boolean;
  graphqlEndpoint: string;
}

class Buckets {
  readonly #buckets = new Map<string, { tokens: number; at: number }>();
  readonly #perMs: number;

  constructor(
    readonly perMinute: number,
    private readonly burst: number,
  ) {
    this.#perMs = perMinute / 60_000;
  }

  /** Seconds to wait, or 0 when the request may go (and has spent its token). */
  take(key: string, now: number): number {
    const b = this.#buckets.get(key) ?? { tokens: this.burst, at: now };
    b.tokens = Math.min(this.burst, b.tokens + (now - b.at) * this.#perMs);
    b.at = now;
    this.#buckets.delete(key); // re-insert: ordered by last use, the oldest evicted first
    this.#buckets.set(key, b);
    if (this.#buckets.size > MAX_CLIENTS) this.#buckets.delete(this.#buckets.keys().next().value!);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - b.tokens) / this.#perMs / 1000));
  }
}

export function useRateLimit(options: RateLimitOptions, metrics?: GatewayMetrics, now: () => number = Date.now): Plugin {
  const byToken = new Buckets(options.perMinute, options.burst);
  const byAnonymousIp = new Buckets(options.perMinute, options.burst);
  const ipCeiling = new Buckets(options.perMinute * options.ipMultiplier, options.burst * options.ipMultiplier);
  return {
    onRequest({ request, url, serverContext, endResponse }) {
      if (options.perMinute === 0 || url.pathname !== options.graphqlEndpoint) return;
      const t = now();
      const auth = request.headers.get('authorization');
      const ip = clientIp(request, (serverContext as { req?: IncomingMessage }).req, options.trustProxy);
      // Hashed, so the bucket map never holds a token.
      const waitToken = auth ? byToken.take(createHash('sha256').update(auth).digest('base64url'), t) : 0;
      const ipBuckets = auth ? ipCeiling : byAnonymousIp;
      const waitIp = waitToken ? 0 : ipBuckets.take(ip, t);
      const wait = waitToken || waitIp;
      if (!wait) return;
      const limit = waitToken ? byToken.perMinute : ipBuckets.perMinute;
      metrics?.rateLimited.inc({ kind: waitToken ? 'client' : 'ip' });
      endResponse(
        graphqlErrorResponse(
          429,
          `Too many requests from this ${waitToken ? 'client' : 'address'}: at most ${limit} a minute. Retry in ${wait} s.`,
          'RATE_LIMITED',
          { retryAfterSeconds: wait },
          { 'retry-after': String(wait) },
        ),
      );
    },
  };
}

function clientIp(request: Request, req: IncomingMessage | undefined, trustProxy: boolean): string {
  const forwarded = trustProxy ? request.headers.get('x-forwarded-for')?.split(',')[0]?.trim() : undefined;
  return forwarded || req?.socket?.remoteAddress || 'unknown';
}
