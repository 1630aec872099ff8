// Rate-limit buckets shared by every replica: rate-limiter-flexible's RateLimiterRedis (an
// atomic Lua INCR per key), with a RateLimiterMemory as its insurance while Redis is unavailable.
//
// Mapping. RATE_LIMIT_PER_MINUTE = R and RATE_LIMIT_BURST = B are a token bucket in memory (burst
// B, refilled at R a minute). rate-limiter-flexible counts in fixed windows, so here a key gets
// P ≈ B points per window of D = B × 60 / R seconds (whole seconds, at least 1; P = R × D / 60):
// the same sustained rate and the same burst. What changes: the budget comes back all at once
// when the window ends, not token by token; across a window boundary a client can send up to
// 2 × P in a short time; Retry-After is the time left in the window. Defaults (600, 100): 100
// requests per 10 s. When B × 60 / R is under a second, the burst becomes R / 60 per second.
//
// The hot path. Awaiting Redis on every request would add a round trip to every request. So
// each replica remembers, per key, what Redis last answered (points left, when the window ends)
// and how many of its requests for that key Redis has not counted yet. A request goes at once
// while Redis's last answer leaves more than S = max(1, P / 10) points beyond those, and fewer
// than S are uncounted; its point is sent within BATCH_MS (5 ms), in one consume with the key's
// other such requests, and the answer updates what the replica knows. Otherwise (near the
// limit, a burst, a key it has no answer for yet) the request waits for Redis. Once Redis says a
// key is spent, rate-limiter-flexible's in-memory block (inMemoryBlockOnConsumed = P) refuses it
// on this replica until the window ends, without asking Redis again.
// The accuracy this trades: a request admitted without waiting is counted by Redis up to a few
// milliseconds later. If other replicas spend the client's last points meanwhile, it goes over
// the limit: at most S requests per replica and window (for a client that sends one request at
// a time, at most one), since the first refusal Redis sends back blocks the key on that replica.
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type IRateLimiterOptions } from 'rate-limiter-flexible';
import type { Buckets, BucketKind, BucketsFactory } from '../http/rate-limit.ts';
import type { RedisLink } from './redis.ts';

const MAX_KEYS = 100_000;
/** Requests admitted without waiting are sent to Redis this often, one command per key. */
const BATCH_MS = 5;

interface Standing {
  /** Points left at Redis's last answer. */
  left: number;
  /** When the window of that answer ends (ms since the epoch). */
  resetAt: number;
  /** This replica's requests counted here and not answered by Redis yet (sent or pending). */
  inFlight: number;
  /** Requests admitted without waiting, to be sent with the next batch. */
  pending: number;
}

interface InMemoryBlocks {
  getInMemoryBlockMsBeforeExpire(rlKey: string): number;
}

export interface SharedBucketsHooks {
  /** A decision was taken by the in-memory insurance limiter because Redis was unavailable. */
  onFallback(): void;
}

/** fixed-window points and duration (s) for a token bucket of `perMinute` and `burst`. */
export function windowFor(perMinute: number, burst: number): { points: number; duration: number } {
  const duration = Math.max(1, Math.round((burst * 60) / perMinute));
  return { points: Math.max(1, Math.round((perMinute * duration) / 60)), duration };
}

export function sharedBuckets(link: RedisLink, hooks: SharedBucketsHooks): BucketsFactory {
  return (kind, perMinute, burst) => new SharedBuckets(link, kind, perMinute, burst, hooks);
}

export class SharedBuckets implements Buckets {
  readonly limiter: RateLimiterRedis;
  readonly points: number;
  readonly #slack: number;
  readonly #standing = new Map<string, Standing>();
  readonly #toSend = new Map<string, Standing>();
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly link: RedisLink,
    kind: BucketKind,
    readonly perMinute: number,
    burst: number,
    private readonly hooks: SharedBucketsHooks,
  ) {
    const { points, duration } = windowFor(perMinute, burst);
    this.points = points;
    this.#slack = Math.max(1, Math.floor(points / 10));
    const options: IRateLimiterOptions = { keyPrefix: `tg:rl:${kind}`, points, duration };
    // The insurance: this replica's own window per key while Redis cannot answer.
    const insurance = new RateLimiterMemory(options);
    const consume = insurance.consume.bind(insurance);
    insurance.consume = (...args: Parameters<RateLimiterMemory['consume']>) => {
      hooks.onFallback();
      if (link.usable) link.failed(new Error('a rate-limit command failed'));
      return consume(...args);
    };
    this.limiter = new RateLimiterRedis({
      ...options,
      storeClient: link.client,
      // Refused at once (to the insurance) while the connection is down.
      rejectIfRedisNotReady: true,
      inMemoryBlockOnConsumed: points,
      insuranceLimiter: insurance,
    });
  }

  take(key: string): number | Promise<number> {
    // rate-limiter-flexible's in-memory block (a public method its typings leave out).
    const blockedMs = (this.limiter as unknown as InMemoryBlocks).getInMemoryBlockMsBeforeExpire(this.limiter.getKey(key));
    if (blockedMs > 0) return Math.max(1, Math.ceil(blockedMs / 1000));
    let s = this.#standing.get(key);
    if (!s) {
      s = { left: 0, resetAt: 0, inFlight: 0, pending: 0 };
      this.#standing.set(key, s);
      if (this.#standing.size > MAX_KEYS) this.#standing.delete(this.#standing.keys().next().value!);
    }
    const far = s.inFlight < this.#slack && s.left - s.inFlight > this.#slack && Date.now() < s.resetAt;
    s.inFlight++;
    if (!far) return this.#consume(key, s, 1);
    // Sent with the key's other requests of the next few milliseconds, in one command.
    s.pending++;
    this.#toSend.set(key, s);
    this.#timer ??= setTimeout(() => this.#flush(), BATCH_MS).unref();
    return 0;
  }

  #flush(): void {
    this.#timer = undefined;
    for (const [key, s] of this.#toSend) {
      const n = s.pending;
      s.pending = 0;
      void this.#consume(key, s, n);
    }
    this.#toSend.clear();
  }

  /** Consumes `n` points (counted in `inFlight` already); resolves with the seconds to wait (0: allowed). */
  #consume(key: string, s: Standing, n: number): Promise<number> {
    const learn = (res: RateLimiterRes) => {
      s.inFlight -= n;
      s.left = res.remainingPoints;
      s.resetAt = Date.now() + res.msBeforeNext;
    };
    return this.limiter.consume(key, n).then(
      (res) => {
        learn(res);
        return 0;
      },
      (res: unknown) => {
        if (!(res instanceof RateLimiterRes)) {
          // Neither Redis nor the insurance answered (should not happen): let the request go.
          s.inFlight -= n;
          return 0;
        }
        learn(res);
        return Math.max(1, Math.ceil(res.msBeforeNext / 1000));
      },
    );
  }
}
