// The sign-in guard shared by every replica through Redis: the rule of src/upstreams/iam/guard.ts
// (2 per form until linked, then one budget of IAM_GUARD_MAX_FAILURES) over Redis, each step one
// atomic Lua script, so three replicas together make at most as many rejected IAM calls per
// user and window as one would.
//
// Not rate-limiter-flexible: its fixed windows let a client spend the budget at the end of one
// window and again at the start of the next (2 × 3 rejected sign-ins; Huawei locks at 5). The
// guard needs the IAM's own sliding window: one sorted set per user (attempt id → time).
//
// Outages. Every replica mirrors the guard's Redis state in memory: its own writes, the others'
// (every script publishes what it changed), and a scan of Redis whenever it reconnects. While
// Redis is unavailable it decides from the mirror: at most ONE rejected sign-in per user, window
// and replica, only for users it knows to be linked (others are refused for 30 s: a user it
// cannot identify across forms could be counted twice), and none for a user with a failure in
// the window. So a full outage allows at most max(before, replicas) rejected calls per window
// (README, "Running several replicas"); when Redis is back, each replica writes what it
// counted meanwhile back, so the shared budget includes it.
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { GatewayError } from '../errors.ts';
import {
  MemoryGuardStore,
  NO_ATTEMPT,
  guardBudgets,
  guardRefusal,
  newMember,
  resolveUser,
  type GuardBudgets,
  type GuardStore,
  type GuardSuccess,
  type IamUserRef,
  type Resolved,
  type SignInAttempt,
  type SignInGuard,
  linkKeys,
} from '../upstreams/iam/guard.ts';
import type { RedisLink } from './redis.ts';

const PREFIX = 'tg:guard:';
const COUNT = (k: string) => `${PREFIX}f:${k}`;
const LOCK = (k: string) => `${PREFIX}l:${k}`;
const ALIAS = (form: string) => `${PREFIX}a:${form}`;
const LINKED = (id: string) => `${PREFIX}k:${id}`;
/** Pub/sub is not per database: the channel names it, so deployments on other databases stay apart. */
const channelOf = (client: Redis) => `${PREFIX}events:${client.options.db ?? 0}`;
/**
 * Set once (NX) by the first replica to find Redis without it: a Redis that has it not any more
 * has lost its data (a restart without persistence), and every replica writes back all the links
 * it knows, not only those it made during the outage.
 */
const EPOCH = `${PREFIX}epoch`;
/** Links between a user's forms are kept this long after the user's last successful sign-in. */
const LINK_TTL_MS = 30 * 24 * 3_600_000;
/** While Redis is unavailable: rejected sign-ins per linked user, window and replica. */
const OUTAGE_BUDGET = 1;
const OUTAGE_RETRY_MS = 30_000;

// Every script publishes what it changed: [op, key, …], ops as in applyEvent below.
const SCRIPTS = {
  // KEYS: count, lock. ARGV: now, window, budget, member, channel, key → 0, or ms to wait.
  guardReserve: {
    numberOfKeys: 2,
    lua: `
local now, window, budget = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local locked = redis.call('PTTL', KEYS[2])
if locked > 0 then return locked end
local n = redis.call('ZCARD', KEYS[1])
if n >= budget then
  local oldest = redis.call('ZRANGE', KEYS[1], n - budget, n - budget, 'WITHSCORES')
  return math.max(1, tonumber(oldest[2]) + window - now)
end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], window)
redis.call('PUBLISH', ARGV[5], cjson.encode({'add', ARGV[6], ARGV[4], ARGV[1]}))
return 0`,
  },
  // KEYS: count. ARGV: now, window, member, channel, key.
  guardReject: {
    numberOfKeys: 1,
    lua: `
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PUBLISH', ARGV[4], cjson.encode({'add', ARGV[5], ARGV[3], ARGV[1]}))`,
  },
  // KEYS: count. ARGV: member, channel, key.
  guardRelease: {
    numberOfKeys: 1,
    lua: `
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('PUBLISH', ARGV[2], cjson.encode({'rem', ARGV[3], ARGV[1]}))`,
  },
  // KEYS: count, lock. ARGV: window, until, member, channel, key.
  guardLock: {
    numberOfKeys: 2,
    lua: `
redis.call('ZREM', KEYS[1], ARGV[3])
redis.call('SET', KEYS[2], '1', 'PX', ARGV[1])
redis.call('PUBLISH', ARGV[4], cjson.encode({'lock', ARGV[5], ARGV[3], ARGV[2]}))`,
  },
  // KEYS: count, lock, id count, id lock, linked marker, alias keys…
  // ARGV: member, whole (1/0), ttl, channel, key, id, forms…
  guardSucceed: {
    lua: `
if ARGV[2] == '1' then redis.call('DEL', KEYS[1], KEYS[2]) else redis.call('ZREM', KEYS[1], ARGV[1]) end
redis.call('DEL', KEYS[3], KEYS[4])
redis.call('SET', KEYS[5], '1', 'PX', ARGV[3])
local forms = {}
for i = 6, #KEYS do
  redis.call('SET', KEYS[i], ARGV[6], 'PX', ARGV[3])
  forms[#forms + 1] = ARGV[i + 1]
end
redis.call('PUBLISH', ARGV[4], cjson.encode({'ok', ARGV[5], ARGV[1], ARGV[2], ARGV[6], forms}))`,
  },
} as const;

type Scripted = Redis & {
  guardReserve(...args: (string | number)[]): Promise<number>;
  guardReject(...args: (string | number)[]): Promise<unknown>;
  guardRelease(...args: (string | number)[]): Promise<unknown>;
  guardLock(...args: (string | number)[]): Promise<unknown>;
  guardSucceed(numberOfKeys: number, ...args: (string | number)[]): Promise<unknown>;
};

/** The guard's state in Redis: GuardStore over the scripts above. */
export class RedisGuardStore implements GuardStore {
  readonly #redis: Scripted;
  readonly channel: string;

  constructor(client: Redis) {
    for (const [name, def] of Object.entries(SCRIPTS)) client.defineCommand(name, def);
    this.#redis = client as Scripted;
    this.channel = channelOf(client);
  }

  alias = async (form: string): Promise<string | undefined> => (await this.#redis.get(ALIAS(form))) ?? undefined;
  isLinked = async (id: string): Promise<boolean> => (await this.#redis.exists(LINKED(id))) > 0;

  async reserve(key: string, member: string, budget: number, now: number, windowMs: number): Promise<number> {
    return Number(await this.#redis.guardReserve(COUNT(key), LOCK(key), now, windowMs, budget, member, this.channel, key));
  }

  async reject(key: string, member: string, now: number, windowMs: number): Promise<void> {
    await this.#redis.guardReject(COUNT(key), now, windowMs, member, this.channel, key);
  }

  async release(key: string, member: string): Promise<void> {
    await this.#redis.guardRelease(COUNT(key), member, this.channel, key);
  }

  async lock(key: string, member: string, now: number, windowMs: number): Promise<void> {
    await this.#redis.guardLock(COUNT(key), LOCK(key), windowMs, now + windowMs, member, this.channel, key);
  }

  async succeed(s: GuardSuccess): Promise<void> {
    const keys = [COUNT(s.key), LOCK(s.key), COUNT(s.id), LOCK(s.id), LINKED(s.id), ...s.forms.map(ALIAS)];
    await this.#redis.guardSucceed(keys.length, ...keys, s.member, s.whole ? '1' : '0', LINK_TTL_MS, this.channel, s.key, s.id, ...s.forms);
  }
}

/** Applies one published change to a replica's mirror. */
export function applyEvent(mirror: MemoryGuardStore, message: string): void {
  let e: unknown;
  try {
    e = JSON.parse(message);
  } catch {
    return;
  }
  if (!Array.isArray(e) || typeof e[1] !== 'string') return;
  const [op, key] = e as [string, string, ...unknown[]];
  if (op === 'add') mirror.add(key, String(e[2]), Number(e[3]));
  else if (op === 'rem') mirror.remove(key, String(e[2]));
  else if (op === 'lock') {
    mirror.remove(key, String(e[2]));
    mirror.setLock(key, Number(e[3]));
  } else if (op === 'ok') {
    // cjson writes an empty list as {}.
    const forms = Array.isArray(e[5]) ? (e[5] as unknown[]).map(String) : [];
    mirror.succeed({ key, member: String(e[2]), whole: e[3] === '1', id: String(e[4]), forms });
  }
}

export interface SharedGuardHooks {
  /** A decision was taken from this replica's memory because Redis was unavailable. */
  onFallback(): void;
}

export class SharedSignInGuard implements SignInGuard {
  /** This replica's copy of the guard's state, for outages. */
  readonly mirror = new MemoryGuardStore();
  readonly store: RedisGuardStore;
  readonly #budgets: GuardBudgets;
  /** Ids linked while Redis was unavailable: written to Redis when it is back. */
  readonly #unsyncedLinks = new Set<string>();
  #syncing: Promise<void> | undefined;
  #syncAgain = false;
  /** While this replica writes its outage counts back, new attempts wait for it (bounded by the command timeouts). */
  #writingBack: Promise<void> | undefined;

  constructor(
    private readonly link: RedisLink,
    private readonly maxFailures: number,
    private readonly windowMs: number,
    private readonly hooks: SharedGuardHooks,
    private readonly now: () => number = Date.now,
  ) {
    this.#budgets = guardBudgets(maxFailures);
    this.store = new RedisGuardStore(link.client);
    if (maxFailures === 0) return;
    const subscriber = link.subscriber();
    const channel = this.store.channel;
    subscriber.on('message', (from: string, message: string) => from === channel && applyEvent(this.mirror, message));
    // (Re)subscribed: events may have been missed, so read Redis again.
    subscriber.on('ready', () => void this.sync());
    subscriber.subscribe(channel).catch(() => {});
    link.onStatus((status) => status === 'ok' && void this.sync());
    if (link.usable) void this.sync();
  }

  async begin(endpoint: string, user: IamUserRef): Promise<SignInAttempt> {
    if (this.maxFailures === 0) return NO_ATTEMPT;
    const member = newMember();
    if (this.link.usable) {
      try {
        await this.#writingBack;
        const r = await resolveUser(this.store, endpoint, user);
        if (r.link) this.mirror.link(r.link.id, [r.link.form]);
        else if (r.linked) this.mirror.link(r.key, []);
        const t = this.now();
        const wait = await this.store.reserve(r.key, member, r.linked ? this.#budgets.linked : this.#budgets.unlinked, t, this.windowMs);
        if (wait > 0) throw guardRefusal(wait);
        this.mirror.add(r.key, member, t);
        return this.#attempt(endpoint, r, member);
      } catch (e) {
        if (e instanceof GatewayError) throw e;
        this.link.failed(e);
      }
    }
    // Redis unavailable: this replica's memory, one rejected sign-in per linked user.
    this.hooks.onFallback();
    const r = await resolveUser(this.mirror, endpoint, user);
    if (!r.linked) {
      throw new GatewayError(
        `The gateway cannot count sign-ins across its replicas right now, and has not seen this user sign in: it refuses the attempt for ${OUTAGE_RETRY_MS / 1000} s so that the IAM does not lock the account.`,
        'RATE_LIMITED',
        { reason: 'SIGN_IN_GUARD', retryAfterSeconds: OUTAGE_RETRY_MS / 1000 },
      );
    }
    const wait = this.mirror.reserve(r.key, member, OUTAGE_BUDGET, this.now(), this.windowMs);
    if (wait > 0) throw guardRefusal(wait);
    return this.#attempt(endpoint, r, member);
  }

  /** Settles in the mirror at once, and in Redis when it is usable (else when it is back, by sync). */
  #attempt(endpoint: string, r: Resolved, member: string): SignInAttempt {
    const both = async (shared: () => Promise<void>, local: () => void) => {
      local();
      if (!this.link.usable) return;
      try {
        await shared();
      } catch (e) {
        this.link.failed(e);
      }
    };
    return {
      rejected: () => {
        const t = this.now();
        return both(
          () => this.store.reject(r.key, member, t, this.windowMs),
          () => this.mirror.reject(r.key, member, t),
        );
      },
      lockedByIam: () => {
        const t = this.now();
        return both(
          () => this.store.lock(r.key, member, t, this.windowMs),
          () => this.mirror.lock(r.key, member, t, this.windowMs),
        );
      },
      released: () =>
        both(
          () => this.store.release(r.key, member),
          () => this.mirror.release(r.key, member),
        ),
      succeeded: (user) => {
        const s: GuardSuccess = { key: r.key, member, whole: r.whole, ...linkKeys(endpoint, user) };
        return both(
          () => this.store.succeed(s),
          () => {
            this.mirror.succeed(s);
            if (!this.link.usable) this.#unsyncedLinks.add(s.id);
          },
        );
      },
    };
  }

  /**
   * Redis is (back) in reach: writes what this replica counted meanwhile (its whole mirror: the
   * sorted sets' members make that idempotent; locks and links only where Redis has none), then
   * reads every count and lock Redis holds into the mirror. One at a time.
   */
  sync(): Promise<void> {
    if (this.#syncing) {
      this.#syncAgain = true;
      return this.#syncing;
    }
    this.#syncing = this.#sync()
      .catch((e) => this.link.failed(e))
      .finally(() => {
        this.#syncing = undefined;
        if (this.#syncAgain) {
          this.#syncAgain = false;
          void this.sync();
        }
      });
    return this.#syncing;
  }

  async #sync(): Promise<void> {
    if (!this.link.usable) return;
    const written = this.#writeBack();
    this.#writingBack = written.catch(() => {});
    try {
      await written;
    } finally {
      this.#writingBack = undefined;
    }
    await this.#readAll();
  }

  async #writeBack(): Promise<void> {
    const redis = this.link.client;
    const now = this.now();
    const fresh = (await redis.set(EPOCH, randomUUID(), 'NX')) === 'OK';
    const write = redis.pipeline();
    const expiries = new Map<string, number>();
    for (const e of this.mirror.entries(now, this.windowMs)) {
      write.zadd(COUNT(e.key), e.at, e.member);
      expiries.set(e.key, Math.max(expiries.get(e.key) ?? 0, e.at + this.windowMs));
    }
    for (const [key, until] of expiries) write.pexpire(COUNT(key), Math.max(1, until - now));
    for (const l of this.mirror.locks(now)) write.set(LOCK(l.key), '1', 'PX', Math.max(1, l.until - now), 'NX');
    const ids = new Set(fresh ? this.mirror.linkedIds() : this.#unsyncedLinks);
    if (ids.size) {
      for (const { form, id } of this.mirror.links()) if (ids.has(id)) write.set(ALIAS(form), id, 'PX', LINK_TTL_MS, 'NX');
      for (const id of ids) write.set(LINKED(id), '1', 'PX', LINK_TTL_MS, 'NX');
    }
    if (write.length) await execAll(write);
    for (const id of ids) this.#unsyncedLinks.delete(id);
  }

  async #readAll(): Promise<void> {
    const redis = this.link.client;
    const now = this.now();
    for (const [pattern, read] of [
      [COUNT('*'), (keys: string[]) => this.#readCounts(keys, now)],
      [LOCK('*'), (keys: string[]) => this.#readLocks(keys, now)],
    ] as const) {
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
        cursor = next;
        if (keys.length) await read(keys);
      } while (cursor !== '0');
    }
  }

  async #readCounts(keys: string[], now: number): Promise<void> {
    const read = this.link.client.pipeline();
    for (const k of keys) read.zrangebyscore(k, now - this.windowMs, '+inf', 'WITHSCORES');
    const results = await execAll(read);
    keys.forEach((k, i) => {
      const flat = results[i] as string[];
      for (let j = 0; j + 1 < flat.length; j += 2) this.mirror.add(k.slice(COUNT('').length), flat[j]!, Number(flat[j + 1]));
    });
  }

  async #readLocks(keys: string[], now: number): Promise<void> {
    const read = this.link.client.pipeline();
    for (const k of keys) read.pttl(k);
    const results = await execAll(read);
    keys.forEach((k, i) => {
      const ttl = Number(results[i]);
      if (ttl > 0) this.mirror.setLock(k.slice(LOCK('').length), now + ttl);
    });
  }
}

/** Runs a pipeline; throws the first command's error. */
async function execAll(p: ReturnType<Redis['pipeline']>): Promise<unknown[]> {
  const results = (await p.exec()) ?? [];
  return results.map(([err, value]) => {
    if (err) throw err;
    return value;
  });
}
