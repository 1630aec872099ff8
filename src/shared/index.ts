// REDIS_URL: the state every replica shares. Loaded (with ioredis and rate-limiter-flexible)
// only when REDIS_URL is set; without it, everything stays in each process's memory.
//   - rate-limit buckets: src/shared/rate-limit.ts
//   - the sign-in guard's counts, links and IAM-lock records: src/shared/sign-in-guard.ts
//   - the cursor key (without CURSOR_SECRET): below
// Redis unreachable at start-up is not an error: the gateway starts on its own memory and
// shares as soon as Redis answers (src/shared/redis.ts).
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { BucketsFactory } from '../http/rate-limit.ts';
import type { GatewayMetrics } from '../observability/metrics.ts';
import type { CursorCodec } from '../schema/cursor.ts';
import type { SignInGuard } from '../upstreams/iam/guard.ts';
import { RedisLink, type RedisStatus } from './redis.ts';
import { sharedBuckets } from './rate-limit.ts';
import { SharedSignInGuard } from './sign-in-guard.ts';

/** How long start-up waits for Redis before it goes on without it. */
const START_WAIT_MS = 3_000;
/**
 * The cursor key: stored once, with SET NX, by the first replica that finds none; every other
 * replica reads that one, even when all start at once. Never expires.
 */
export const CURSOR_KEY = 'tg:cursor-key';

export interface SharedState {
  readonly status: RedisStatus;
  /** The shared cursor key, when Redis answered at start-up and CURSOR_SECRET is unset. */
  readonly cursorKey: Buffer | undefined;
  readonly link: RedisLink;
  /** Binds the gateway's metrics, and the codec to keep on the shared key. */
  bind(metrics: GatewayMetrics, cursors: CursorCodec | undefined): void;
  rateLimitBuckets: BucketsFactory;
  signInGuard(maxFailures: number, windowMs: number): SignInGuard;
  close(): Promise<void>;
}

export async function connectShared(
  options: { redisUrl: string; cursorSecret: string | undefined },
  logger: Logger,
): Promise<SharedState> {
  const link = new RedisLink(options.redisUrl, logger);
  await link.connect(START_WAIT_MS);
  let metrics: GatewayMetrics | undefined;
  const fallback = (store: string) => metrics?.redisFallbacks.inc({ store });
  let cursors: CursorCodec | undefined;

  let cursorKey: Buffer | undefined;
  if (!options.cursorSecret && link.usable) {
    cursorKey = await storeCursorKey(link, randomBytes(32)).catch((e: unknown) => {
      link.failed(e);
      return undefined;
    });
  }
  if (!options.cursorSecret && !cursorKey) logger.warn('cursor key: Redis did not answer, this replica signs cursors with its own key until it does');

  // Every time Redis is back: store the key this replica uses again if Redis lost it (a
  // restart without persistence), and switch to the stored one if another replica's won.
  link.onStatus((status) => {
    metrics?.redisUnavailable.set(status === 'ok' ? 0 : 1);
    if (status !== 'ok' || !cursors) return;
    const codec = cursors;
    storeCursorKey(link, codec.key).then(
      (key) => codec.adopt(key),
      (e: unknown) => link.failed(e),
    );
  });

  return {
    get status() {
      return link.status;
    },
    cursorKey,
    link,
    bind(m, c) {
      metrics = m;
      metrics.redisUnavailable.set(link.usable ? 0 : 1);
      if (!options.cursorSecret) cursors = c;
      // Redis came up between start-up and now, with the codec still on its own key.
      if (cursors && !cursorKey && link.usable) {
        const codec = cursors;
        storeCursorKey(link, codec.key).then((key) => codec.adopt(key), (e: unknown) => link.failed(e));
      }
    },
    rateLimitBuckets: sharedBuckets(link, { onFallback: () => fallback('rate_limit') }),
    signInGuard: (maxFailures, windowMs) => new SharedSignInGuard(link, maxFailures, windowMs, { onFallback: () => fallback('sign_in_guard') }),
    close: () => link.close(),
  };
}

/** SET NX `candidate`, then the key Redis holds (the candidate, or an earlier replica's). */
async function storeCursorKey(link: RedisLink, candidate: Buffer): Promise<Buffer> {
  await link.client.set(CURSOR_KEY, candidate.toString('base64'), 'NX');
  const stored = await link.client.get(CURSOR_KEY);
  if (!stored) throw new Error('the cursor key is missing right after it was stored');
  return Buffer.from(stored, 'base64');
}
