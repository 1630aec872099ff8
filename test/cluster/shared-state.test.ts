// The Redis-backed pieces on their own, against a real redis-server: several instances in this
// process stand for several replicas. The global setup's server (inject('redisUrl'), one
// database per describe) for the shared behaviour; a server of this file's own for outages.
import { Redis } from 'ioredis';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { GatewayError } from '../../src/errors.ts';
import { connectShared } from '../../src/shared/index.ts';
import { SharedBuckets, windowFor } from '../../src/shared/rate-limit.ts';
import { RedisLink } from '../../src/shared/redis.ts';
import { SharedSignInGuard } from '../../src/shared/sign-in-guard.ts';
import type { IamUserRef, SignInAttempt } from '../../src/upstreams/iam/guard.ts';
import { startRedis, type RedisServer } from './redis-server.ts';

const silent = pino({ level: 'silent' });
const EP = 'main';
const USER = { id: 'u-1', name: 'Alice', domain: { id: 'd-1', name: 'Acme' } };
const BY_NAME = { name: USER.name, domain: { name: USER.domain.name } };
const BY_DOMAIN_ID = { name: USER.name, domain: { id: USER.domain.id } };
const BY_ID = { id: USER.id };
const FORMS: IamUserRef[] = [BY_NAME, BY_DOMAIN_ID, BY_ID];
const settle = () => new Promise((r) => setTimeout(r, 100)); // pub/sub messages arrive

const links: RedisLink[] = [];
async function linkTo(url: string): Promise<RedisLink> {
  const link = new RedisLink(url, silent);
  links.push(link);
  await link.connect(2_000);
  return link;
}
afterEach(async () => {
  await Promise.all(links.splice(0).map((l) => l.close()));
});

async function flush(url: string) {
  const admin = new Redis(url);
  await admin.flushdb();
  admin.disconnect();
}

/** The refusal begin() throws, or the attempt. */
async function attempt(g: SharedSignInGuard, user: IamUserRef): Promise<SignInAttempt | GatewayError> {
  try {
    return await g.begin(EP, user);
  } catch (e) {
    expect(e).toBeInstanceOf(GatewayError);
    return e as GatewayError;
  }
}
/** One wrong password: true when it reached the IAM. */
async function fail(g: SharedSignInGuard, user: IamUserRef): Promise<boolean> {
  const a = await attempt(g, user);
  if (a instanceof GatewayError) return false;
  await a.rejected();
  return true;
}
async function signIn(g: SharedSignInGuard, user: IamUserRef = BY_NAME) {
  const a = await attempt(g, user);
  if (a instanceof GatewayError) throw a;
  await a.succeeded(USER);
}

describe('SharedSignInGuard: two replicas, one budget', () => {
  const url = `${inject('redisUrl')}/1`;
  let replicas: SharedSignInGuard[];
  const fallbacks = { count: 0 };
  beforeEach(async () => {
    await flush(url);
    const hooks = { onFallback: () => void fallbacks.count++ };
    replicas = [new SharedSignInGuard(await linkTo(url), 3, 60_000, hooks), new SharedSignInGuard(await linkTo(url), 3, 60_000, hooks)];
    await settle();
  });

  it('a linked user: 3 rejected sign-ins in all, whatever replica and form; then refused on both', async () => {
    await signIn(replicas[0]!);
    let reached = 0;
    for (let i = 0; i < 12; i++) if (await fail(replicas[i % 2]!, FORMS[i % 3]!)) reached++;
    expect(reached).toBe(3);
    for (const g of replicas) expect(await attempt(g, BY_ID)).toBeInstanceOf(GatewayError);
    expect(fallbacks.count).toBe(0);
  });

  it('a user never seen: 2 by name (any domain) and 2 by id, across replicas', async () => {
    let reached = 0;
    for (let i = 0; i < 12; i++) if (await fail(replicas[i % 2]!, FORMS[i % 3]!)) reached++;
    expect(reached).toBe(4);
    const refused = (await attempt(replicas[1]!, { name: 'ALICE', domain: { name: 'elsewhere' } })) as GatewayError;
    expect(refused.extensions).toMatchObject({ code: 'RATE_LIMITED', reason: 'SIGN_IN_GUARD' });
    expect(refused.extensions.retryAfterSeconds).toBeGreaterThan(55);
  });

  it('attempts in flight count on every replica: 10 concurrent wrong passwords over two replicas, 3 reach the IAM', async () => {
    await signIn(replicas[0]!);
    const attempts = await Promise.all(Array.from({ length: 10 }, (_, i) => attempt(replicas[i % 2]!, FORMS[i % 3]!)));
    const through = attempts.filter((a): a is SignInAttempt => !(a instanceof GatewayError));
    expect(through).toHaveLength(3);
    await Promise.all(through.map((a) => a.rejected()));
  });

  it('an IAM lock recorded by one replica stops the other; a success on either clears the count', async () => {
    await signIn(replicas[0]!);
    await ((await attempt(replicas[0]!, BY_NAME)) as SignInAttempt).lockedByIam();
    expect(((await attempt(replicas[1]!, BY_ID)) as GatewayError).extensions.retryAfterSeconds).toBe(60);
  });

  it('each replica mirrors the other’s counts and links (pub/sub), for outages', async () => {
    await signIn(replicas[0]!);
    await fail(replicas[0]!, BY_NAME);
    await settle();
    const mirror = replicas[1]!.mirror;
    const id = [...mirror.linkedIds()];
    expect(id).toHaveLength(1);
    expect([...mirror.entries(Date.now(), 60_000)].map((e) => e.key)).toEqual(id);
  });
});

describe('SharedSignInGuard: Redis killed and restarted', () => {
  let server: RedisServer;
  beforeAll(async () => {
    server = await startRedis();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('down: one rejected sign-in per linked user and replica, none for a user it cannot link or that already failed; back: the counts are merged', async () => {
    const fallbacks = { count: 0 };
    const hooks = { onFallback: () => void fallbacks.count++ };
    const [a, b] = [new SharedSignInGuard(await linkTo(server.url), 3, 60_000, hooks), new SharedSignInGuard(await linkTo(server.url), 3, 60_000, hooks)];
    await settle();
    const BOB = { id: 'u-2', name: 'Bob', domain: USER.domain };
    await signIn(a!); // Alice linked, no failure
    const bob = (await a!.begin(EP, { id: BOB.id })) as SignInAttempt;
    await bob.succeeded(BOB);
    await fail(b!, { id: BOB.id }); // Bob: one failure before the outage
    await settle();

    await server.kill();
    await new Promise((r) => setTimeout(r, 300));
    expect(links.every((l) => l.status === 'unavailable')).toBe(true);
    let reached = 0;
    for (let i = 0; i < 6; i++) if (await fail([a!, b!][i % 2]!, FORMS[i % 3]!)) reached++;
    expect(reached).toBe(2); // one per replica
    for (const g of [a!, b!]) {
      expect(await fail(g, { id: BOB.id })).toBe(false); // already one failure in the window
      const unknown = (await attempt(g, { name: 'Carol', domain: { name: 'Acme' } })) as GatewayError;
      expect(unknown.extensions).toMatchObject({ code: 'RATE_LIMITED', reason: 'SIGN_IN_GUARD', retryAfterSeconds: 30 });
    }
    expect(fallbacks.count).toBeGreaterThan(0);

    await server.restart();
    const back = Date.now();
    while (!links.every((l) => l.usable) && Date.now() - back < 10_000) await new Promise((r) => setTimeout(r, 50));
    expect(links.every((l) => l.usable)).toBe(true);
    await settle();
    // Both replicas wrote their outage failure back: 2 of Alice's 3 are spent, by any form.
    expect(await fail(a!, BY_ID)).toBe(true);
    expect(await fail(b!, BY_NAME)).toBe(false);
  }, 30_000);
});

describe('SharedBuckets (rate-limiter-flexible over Redis)', () => {
  const url = `${inject('redisUrl')}/2`;
  beforeEach(() => flush(url));

  it('maps RATE_LIMIT_PER_MINUTE and RATE_LIMIT_BURST onto fixed windows: the same rate and burst', () => {
    expect(windowFor(600, 100)).toEqual({ points: 100, duration: 10 });
    expect(windowFor(60, 3)).toEqual({ points: 3, duration: 3 });
    expect(windowFor(6, 1)).toEqual({ points: 1, duration: 10 });
    expect(windowFor(600, 1)).toEqual({ points: 10, duration: 1 }); // under a second: the per-second rate
  });

  it('far from the limit a request is answered at once (no promise: no Redis round trip waited for); near it, it waits; spent, refused locally', async () => {
    const buckets = new SharedBuckets(await linkTo(url), 'client', 600, 100, { onFallback: () => {} });
    expect(await buckets.take('k')).toBe(0); // no standing yet: waits once
    let immediate = 0;
    for (let i = 0; i < 95; i++) {
      const r = buckets.take('k');
      if (typeof r === 'number') immediate++;
      expect(await r).toBe(0);
      await new Promise((resolve) => setTimeout(resolve, 1)); // a client at several hundred requests a second
    }
    expect(immediate).toBeGreaterThan(80);
    const waits: (number | Promise<number>)[] = [];
    for (let i = 0; i < 6; i++) waits.push(buckets.take('k'));
    expect(await Promise.all(waits)).toEqual([0, 0, 0, 0, expect.any(Number), expect.any(Number)]);
    const refused = buckets.take('k');
    expect(typeof refused).toBe('number'); // the in-memory block: no Redis call
    expect(refused).toBeGreaterThan(0);
    expect(refused).toBeLessThanOrEqual(10);
  });

  it('a burst waits: at most S = P / 10 requests of a key go without Redis having counted them', async () => {
    const buckets = new SharedBuckets(await linkTo(url), 'client', 600, 100, { onFallback: () => {} });
    await buckets.take('burst');
    const burst = Array.from({ length: 30 }, () => buckets.take('burst'));
    expect(burst.filter((r) => typeof r === 'number')).toHaveLength(10);
    expect(await Promise.all(burst)).toEqual(burst.map(() => 0));
  });

  it('two replicas share one budget: 10 points, at most one request per replica over it', async () => {
    const replicas = [
      new SharedBuckets(await linkTo(url), 'client', 60, 10, { onFallback: () => {} }),
      new SharedBuckets(await linkTo(url), 'client', 60, 10, { onFallback: () => {} }),
    ];
    let passed = 0;
    for (let i = 0; i < 30; i++) if ((await replicas[i % 2]!.take('shared')) === 0) passed++;
    expect(passed).toBeGreaterThanOrEqual(10);
    expect(passed).toBeLessThanOrEqual(12);
  });
});

describe('the cursor key', () => {
  const url = `${inject('redisUrl')}/3`;
  beforeEach(() => flush(url));

  it('replicas starting at once all end up with the one key stored first (SET NX)', async () => {
    const shared = await Promise.all([1, 2, 3].map(() => connectShared({ redisUrl: url, cursorSecret: undefined }, silent)));
    try {
      const keys = shared.map((s) => s.cursorKey!.toString('base64'));
      expect(new Set(keys).size).toBe(1);
      const admin = new Redis(url);
      expect(await admin.get('tg:cursor-key')).toBe(keys[0]);
      admin.disconnect();
    } finally {
      await Promise.all(shared.map((s) => s.close()));
    }
  });

  it('with CURSOR_SECRET, Redis holds no cursor key', async () => {
    const shared = await connectShared({ redisUrl: url, cursorSecret: 'x'.repeat(32) }, silent);
    try {
      expect(shared.cursorKey).toBeUndefined();
      const admin = new Redis(url);
      expect(await admin.exists('tg:cursor-key')).toBe(0);
      admin.disconnect();
    } finally {
      await shared.close();
    }
  });
});
