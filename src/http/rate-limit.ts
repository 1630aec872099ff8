// Token buckets per client: one per access token (its hash), else one per IP. A request with a
// token also spends from its IP's ceiling (RATE_LIMIT_IP_MULTIPLIER times higher), so rotating
// made-up tokens does not escape the limit.
// Over a limit, the request gets 429 RATE_LIMITED with Retry-After and reaches no upstream.
//
// Without REDIS_URL the buckets are this process's (below). With it, they are shared by every
// replica (src/shared/rate-limit.ts: rate-limiter-flexible over Redis, fixed windows, an
// in-memory insurance limiter for outages); `take` then answers at once, without waiting for
// Redis, for clients far from their limit, and returns a promise only near it.
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

/** One kind of bucket (per token, per anonymous address, per address ceiling). */
export interface Buckets {
  readonly perMinute: number;
  /** Seconds to wait, or 0 when the request may go (and has spent its token). */
  take(key: string, now: number): number | Promise<number>;
}

export type BucketKind = 'client' | 'address' | 'ceiling';
export type BucketsFactory = (kind: BucketKind, perMinute: number, burst: number) => Buckets;

/** A token bucket per key, in this process. */
export class MemoryBuckets implements Buckets {
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

const memoryBuckets: BucketsFactory = (_kind, perMinute, burst) => new MemoryBuckets(perMinute, burst);

/** `buckets`: where the buckets live (default: this process; src/shared/rate-limit.ts: Redis). */
export function useRateLimit(
  options: RateLimitOptions,
  metrics?: GatewayMetrics,
  now: () => number = Date.now,
  buckets: BucketsFactory = memoryBuckets,
): Plugin {
  const byToken = buckets('client', options.perMinute, options.burst);
  const byAnonymousIp = buckets('address', options.perMinute, options.burst);
  const ipCeiling = buckets('ceiling', options.perMinute * options.ipMultiplier, options.burst * options.ipMultiplier);
  return {
    // Not async: without a promise from the buckets, it answers at once.
    onRequest({ request, url, serverContext, endResponse }) {
      if (options.perMinute === 0 || url.pathname !== options.graphqlEndpoint) return;
      const t = now();
      const auth = request.headers.get('authorization');
      const ip = clientIp(request, (serverContext as { req?: IncomingMessage }).req, options.trustProxy);
      const ipBuckets = auth ? ipCeiling : byAnonymousIp;
      const refuse = (byClient: boolean, wait: number) => {
        const limit = byClient ? byToken.perMinute : ipBuckets.perMinute;
        metrics?.rateLimited.inc({ kind: byClient ? 'client' : 'ip' });
        endResponse(
          graphqlErrorResponse(
            429,
            `Too many requests from this ${byClient ? 'client' : 'address'}: at most ${limit} a minute. Retry in ${wait} s.`,
            'RATE_LIMITED',
            { retryAfterSeconds: wait },
            { 'retry-after': String(wait) },
          ),
        );
      };
      const takeIp = () => then(ipBuckets.take(ip, t), (waitIp) => void (waitIp && refuse(false, waitIp)));
      if (!auth) return takeIp();
      // Hashed (and shortened: 128 bits), so the buckets never hold a token.
      const key = createHash('sha256').update(auth).digest('base64url').slice(0, 22);
      return then(byToken.take(key, t), (waitToken) => (waitToken ? refuse(true, waitToken) : takeIp()));
    },
  };
}

/** f(value), at once when it is not a promise. */
function then<T, R>(value: T | Promise<T>, f: (v: T) => R | Promise<R>): R | Promise<R> {
  return value instanceof Promise ? value.then(f) : f(value);
}

function clientIp(request: Request, req: IncomingMessage | undefined, trustProxy: boolean): string {
  const forwarded = trustProxy ? request.headers.get('x-forwarded-for')?.split(',')[0]?.trim() : undefined;
  return forwarded || req?.socket?.remoteAddress || 'unknown';
}
