// A token bucket per client: the hash of its access token when it sends one, else its IP.
// Over the limit, the request gets 429 RATE_LIMITED with Retry-After and reaches no upstream.
import { createHash } from 'node:crypto';
import type { Plugin } from 'graphql-yoga';
import type { IncomingMessage } from 'node:http';
import type { GatewayMetrics } from '../observability/metrics.ts';
import { graphqlErrorResponse } from './responses.ts';

const MAX_CLIENTS = 100_000;

export interface RateLimitOptions {
  perMinute: number;
  burst: number;
  trustProxy: boolean;
  graphqlEndpoint: string;
}

export function useRateLimit(options: RateLimitOptions, metrics?: GatewayMetrics, now: () => number = Date.now): Plugin {
  const buckets = new Map<string, { tokens: number; at: number }>();
  const ratePerMs = options.perMinute / 60_000;
  return {
    onRequest({ request, url, serverContext, endResponse }) {
      if (options.perMinute === 0 || url.pathname !== options.graphqlEndpoint) return;
      const key = clientKey(request, (serverContext as { req?: IncomingMessage }).req, options.trustProxy);
      const t = now();
      const bucket = buckets.get(key) ?? { tokens: options.burst, at: t };
      bucket.tokens = Math.min(options.burst, bucket.tokens + (t - bucket.at) * ratePerMs);
      bucket.at = t;
      buckets.delete(key); // re-insert: the map stays ordered by last use, oldest evicted first
      buckets.set(key, bucket);
      if (buckets.size > MAX_CLIENTS) buckets.delete(buckets.keys().next().value!);
      if (bucket.tokens >= 1) {
        bucket.tokens -= 1;
        return;
      }
      const retryAfterSeconds = Math.max(1, Math.ceil((1 - bucket.tokens) / ratePerMs / 1000));
      metrics?.rateLimited.inc({ kind: 'client' });
      endResponse(
        graphqlErrorResponse(
          429,
          `Too many requests from this client: at most ${options.perMinute} a minute (bursts of ${options.burst}). Retry in ${retryAfterSeconds} s.`,
          'RATE_LIMITED',
          { retryAfterSeconds },
          { 'retry-after': String(retryAfterSeconds) },
        ),
      );
    },
  };
}

function clientKey(request: Request, req: IncomingMessage | undefined, trustProxy: boolean): string {
  const auth = request.headers.get('authorization');
  // Hashed, so the bucket map never holds a token.
  if (auth) return `token:${createHash('sha256').update(auth).digest('base64url')}`;
  const forwarded = trustProxy ? request.headers.get('x-forwarded-for')?.split(',')[0]?.trim() : undefined;
  return `ip:${forwarded || req?.socket?.remoteAddress || 'unknown'}`;
}
