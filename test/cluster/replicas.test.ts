// Three real gateway processes (`node --import tsx src/server.ts`), the emulator in its own
// process, and a real redis-server, all on loopback: cursors continue across replicas, the
// sign-in guard and the rate limit hold across them, and with Redis killed and restarted the
// contract's outage behaviour holds and the shared state comes back by itself.
// The tests run in order, on one cluster: each scenario uses its own users, IAM endpoint name,
// bearer token or client address, so their counts do not mix. Every wait is bounded and every
// process is killed when the file is done (spawn-gateway.ts's afterAll, and ours for Redis).
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_ACCESS_TOKENS, DEMO_CONSUMERS, DEMO_CREDENTIAL_PROVIDERS, DEMO_IAM_USERS, DEMO_INSTANCE_ID } from '../../src/emulator/fixtures.ts';
import { start, urlOf, within, type Running } from '../spawn-gateway.ts';
import { startRedis, type RedisServer } from './redis-server.ts';

const WAIT_MS = 15_000;
const RATE = { perMinute: 120, burst: 20 }; // rate-limiter-flexible: 20 points per 10 s window
const FULL = { authorization: `Bearer ${DEMO_ACCESS_TOKENS.full.token}` };
const USER = DEMO_IAM_USERS.password;
const MFA_USER = DEMO_IAM_USERS.mfa; // never signs in without a passcode: never linked here

const TOKENS = /* GraphQL */ `
  query Tokens($instanceId: String!, $consumerId: String!, $provider: String!, $first: Int, $after: String) {
    instance(instanceId: $instanceId) {
      authenticationTokens(consumerId: $consumerId, credentialProviderIdentifier: $provider, first: $first, after: $after) {
        pageInfo { endCursor hasNextPage }
        nodes { authenticationTokenId }
      }
    }
  }
`;
const CREATE_IAM_TOKEN = /* GraphQL */ `
  mutation CreateIamToken($input: CreateIamTokenInput!) {
    createIamToken(input: $input) { value }
  }
`;

let redis: RedisServer;
let admin: Redis;
let emulator: Running;
let emulatorUrl: string;
const replicas: { proc: Running; url: string; base: string }[] = [];

/** A client address of its own for each request that should not share a bucket with others. */
let addresses = 0;
const freshAddress = () => ({ 'x-forwarded-for': `10.${(++addresses >> 16) & 255}.${(addresses >> 8) & 255}.${addresses & 255}` });

async function gql(replica: number, query: string, variables: Record<string, unknown>, headers: Record<string, string> = {}) {
  const res = await fetch(replicas[replica]!.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ query, variables }),
    signal: AbortSignal.timeout(WAIT_MS),
  });
  const body = (await res.json()) as { data?: any; errors?: { message: string; extensions: Record<string, any> }[] };
  return { status: res.status, ...body };
}

const page = (replica: number, first: number, after?: string | null) =>
  gql(
    replica,
    TOKENS,
    { instanceId: DEMO_INSTANCE_ID, consumerId: DEMO_CONSUMERS.large, provider: DEMO_CREDENTIAL_PROVIDERS.jwt.identifier, first, after },
    { ...FULL, ...freshAddress() },
  );
const ids = (r: Awaited<ReturnType<typeof page>>): string[] => {
  expect(r.errors).toBeUndefined();
  return r.data.instance.authenticationTokens.nodes.map((n: { authenticationTokenId: string }) => n.authenticationTokenId);
};

type Form = 'name' | 'domainId' | 'id';
const FORMS: Form[] = ['name', 'domainId', 'id'];
function password(user: typeof USER | typeof MFA_USER, form: Form, pass: string): Record<string, string> {
  if (form === 'id') return { userId: user.id, password: pass };
  if (form === 'domainId') return { userName: user.name, domainId: user.domain.id, password: pass };
  return { userName: user.name, domainName: user.domain.name, password: pass };
}
/** A sign-in from a client address of its own (so that no address bucket interferes). */
const signIn = (replica: number, endpoint: string, pw: Record<string, string>) =>
  gql(replica, CREATE_IAM_TOKEN, { input: { endpoint, includeCatalog: false, password: pw } }, freshAddress());

async function emulatorCall(path: string, init?: RequestInit): Promise<any> {
  const res = await fetch(`${emulatorUrl}${path}`, { ...init, signal: AbortSignal.timeout(WAIT_MS) });
  const text = await res.text();
  return text ? JSON.parse(text) : undefined;
}
/** Calls the IAM answered (POST /v3/auth/tokens, whatever its answer) since the last reset. */
const iamCalls = async (): Promise<number> => (await emulatorCall('/__emulator/counters'))['iam.createToken']?.requests ?? 0;
/** Clears the emulator's counters and its lockouts. */
const resetEmulator = () => emulatorCall('/__emulator/reset', { method: 'POST' });
/** Whether the IAM itself has locked the user (asked directly, with the right password). */
async function lockedAtIam(user: typeof USER | typeof MFA_USER): Promise<boolean> {
  const res = await fetch(`${emulatorUrl}/v3/auth/tokens?nocatalog=true`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ auth: { identity: { methods: ['password'], password: { user: { id: user.id, password: user.password } } } } }),
    signal: AbortSignal.timeout(WAIT_MS),
  });
  return /locked/i.test(await res.text());
}

const ready = async (replica: number) => {
  const res = await fetch(`${replicas[replica]!.base}/ready`, { signal: AbortSignal.timeout(WAIT_MS) });
  return { status: res.status, body: (await res.json()) as { status: string; redis: string } };
};
/** Polls until every replica's /ready says `redis: want` (bounded). */
async function allReady(want: 'ok' | 'unavailable') {
  await within(
    WAIT_MS,
    `every replica reporting redis: ${want}`,
    (async () => {
      for (;;) {
        const states = await Promise.all(replicas.map((_, i) => ready(i)));
        if (states.every((s) => s.status === 200 && s.body.redis === want)) return;
        await new Promise((r) => setTimeout(r, 100));
      }
    })(),
  );
}
const metric = async (replica: number, name: string): Promise<string[]> =>
  (await (await fetch(`${replicas[replica]!.base}/metrics`, { signal: AbortSignal.timeout(WAIT_MS) })).text())
    .split('\n')
    .filter((l) => l.startsWith(name));
const logLines = (replica: number, msg: string) => replicas[replica]!.proc.stdout().split('\n').filter((l) => l.includes(msg)).length;

/** Sends `n` requests with one bearer token, round robin over the replicas: their statuses. */
async function spread(token: string, n: number, from = freshAddress()): Promise<number[]> {
  const statuses: number[] = [];
  for (let i = 0; i < n; i++) statuses.push((await gql(i % 3, '{ __typename }', {}, { authorization: `Bearer ${token}`, ...from })).status);
  return statuses;
}

beforeAll(async () => {
  redis = await startRedis();
  admin = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  admin.on('error', () => {});
  emulator = start({ EMULATOR_PORT: '0' }, ['--import', 'tsx', 'src/emulator/main.ts']);
  emulatorUrl = await within(
    WAIT_MS,
    'the emulator printing its URL',
    (async () => {
      for (;;) {
        const m = /upstream emulator listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(emulator.stdout());
        if (m) return m[1]!;
        if (emulator.proc.exitCode !== null) throw new Error(`emulator exited: ${emulator.stderr()}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    })(),
  );
  // All three at once, on an empty Redis: they race for the cursor key.
  const env = {
    PORT: '0',
    EMULATOR: 'off',
    IDAAS_ENDPOINT: emulatorUrl,
    IAM_ENDPOINTS: `main=${emulatorUrl},outage=${emulatorUrl}`,
    REDIS_URL: redis.url,
    TRUST_PROXY: 'on',
    RATE_LIMIT_PER_MINUTE: String(RATE.perMinute),
    RATE_LIMIT_BURST: String(RATE.burst),
    IAM_GUARD_MAX_FAILURES: '3',
    GRAPHIQL: 'off',
    LOG_LEVEL: 'info',
  };
  const procs = [start(env), start(env), start(env)];
  const urls = await Promise.all(procs.map((p) => urlOf(p)));
  procs.forEach((proc, i) => replicas.push({ proc, url: urls[i]!, base: urls[i]!.replace(/\/graphql$/, '') }));
  await admin.connect();
}, 60_000);

afterAll(async () => {
  admin?.disconnect();
  await redis?.stop();
});

describe('three replicas sharing one Redis', () => {
  it('/ready says redis: "ok" on every replica', async () => {
    await allReady('ok');
    for (let i = 0; i < 3; i++) expect(logLines(i, 'redis connected')).toBe(1);
  });

  it('a cursor made by replica 1 continues on replicas 2 and 3 (no CURSOR_SECRET: one key, stored with SET NX)', async () => {
    const whole = ids(await page(0, 15));
    const first = await page(0, 5);
    const second = await page(1, 5, first.data.instance.authenticationTokens.pageInfo.endCursor);
    const third = await page(2, 5, second.data.instance.authenticationTokens.pageInfo.endCursor);
    expect([...ids(first), ...ids(second), ...ids(third)]).toEqual(whole);
    expect(await admin.exists('tg:cursor-key')).toBe(1);
  });

  it('the rate limit is shared: one budget of 20 for a token, whichever replica a request reaches', async () => {
    const statuses = await spread('cluster-rate-limit-1', 45);
    const passed = statuses.filter((s) => s === 200).length;
    expect(new Set(statuses)).toEqual(new Set([200, 429]));
    // 20 shared (independent replicas would let 60 through); at most one over per replica.
    expect(passed).toBeGreaterThanOrEqual(20);
    expect(passed).toBeLessThanOrEqual(23);
    expect(statuses.slice(-6)).toEqual([429, 429, 429, 429, 429, 429]);
  });

  it('a user the gateway has never seen sign in: at most 4 rejected IAM calls (2 by name, 2 by id), wrong passwords spread over the replicas and forms', async () => {
    await resetEmulator();
    for (let i = 0; i < 12; i++) {
      const r = await signIn(i % 3, 'main', password(MFA_USER, FORMS[Math.floor(i / 3) % 3]!, `wrong-${i}`));
      expect(['UNAUTHENTICATED', 'RATE_LIMITED']).toContain(r.errors?.[0]?.extensions.code);
    }
    expect(await iamCalls()).toBe(4);
    expect(await lockedAtIam(MFA_USER)).toBe(false);
  });

  it('a user seen signing in (forms linked): at most 3 rejected IAM calls across the three replicas and all forms; then refused everywhere', async () => {
    await resetEmulator();
    expect((await signIn(0, 'main', password(USER, 'name', USER.password))).errors).toBeUndefined();
    for (let i = 0; i < 12; i++) await signIn(i % 3, 'main', password(USER, FORMS[i % 3]!, `wrong-${i}`));
    expect(await iamCalls()).toBe(1 + 3);
    for (let i = 0; i < 3; i++) {
      const r = await signIn(i, 'main', password(USER, 'id', USER.password));
      expect(r.errors?.[0]?.extensions).toMatchObject({ code: 'RATE_LIMITED', reason: 'SIGN_IN_GUARD' });
    }
    expect(await iamCalls()).toBe(4);
    expect(await lockedAtIam(USER)).toBe(false);
  });
});

describe('Redis killed, then restarted', () => {
  let cursorKey: string | null;
  let cursorBefore: string;

  it('before: the user signs in once on the "outage" endpoint (its forms linked, known to every replica)', async () => {
    await resetEmulator();
    expect((await signIn(1, 'outage', password(USER, 'name', USER.password))).errors).toBeUndefined();
    cursorKey = await admin.get('tg:cursor-key');
    cursorBefore = (await page(0, 5)).data.instance.authenticationTokens.pageInfo.endCursor;
    await new Promise((r) => setTimeout(r, 200)); // the link's pub/sub message reaches every replica
  });

  it('Redis down: every /ready stays 200 with redis: "unavailable", one log line each, and reads keep working', async () => {
    await redis.kill();
    await allReady('unavailable');
    for (let i = 0; i < 3; i++) {
      expect(ids(await page(i, 5)).length).toBe(5);
      expect(await metric(i, 'redis_unavailable ')).toEqual(['redis_unavailable 1']);
    }
    // A cursor made before the outage, and one made during it, continue on the other replicas.
    expect(ids(await page(2, 5, cursorBefore)).length).toBe(5);
    const during = (await page(2, 5)).data.instance.authenticationTokens.pageInfo.endCursor;
    expect(ids(await page(0, 5, during)).length).toBe(5);
  });

  it('Redis down: each replica keeps its own rate limit (the insurance limiter)', async () => {
    const from = freshAddress();
    const statuses: number[] = [];
    for (let i = 0; i < 22; i++) statuses.push((await gql(0, '{ __typename }', {}, { authorization: 'Bearer cluster-outage-1', ...from })).status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(20);
    expect(statuses.slice(-2)).toEqual([429, 429]);
    expect((await metric(0, 'redis_fallbacks_total{store="rate_limit"}'))[0]).toMatch(/ [1-9]\d*$/);
  });

  it('Redis down: the guard allows at most one rejected sign-in per user and replica, and none for a user it cannot link', async () => {
    await resetEmulator();
    for (let i = 0; i < 9; i++) await signIn(i % 3, 'outage', password(USER, FORMS[Math.floor(i / 3)]!, `wrong-${i}`));
    expect(await iamCalls()).toBe(3);
    for (let i = 0; i < 3; i++) {
      const r = await signIn(i, 'outage', password(MFA_USER, 'name', `wrong-${i}`));
      expect(r.errors?.[0]?.extensions).toMatchObject({ code: 'RATE_LIMITED', reason: 'SIGN_IN_GUARD' });
    }
    expect(await iamCalls()).toBe(3);
    expect(await lockedAtIam(USER)).toBe(false);
    for (let i = 0; i < 3; i++) {
      expect((await metric(i, 'redis_fallbacks_total{store="sign_in_guard"}'))[0]).toMatch(/ [1-9]\d*$/);
      expect(logLines(i, 'redis unavailable')).toBe(1); // one line for the transition, none per request
    }
  });

  it('Redis back (empty): /ready says "ok" again by itself, and the cursor key is stored again', async () => {
    await redis.restart();
    await allReady('ok');
    await within(
      WAIT_MS,
      'the cursor key stored again',
      (async () => {
        while ((await admin.get('tg:cursor-key').catch(() => null)) !== cursorKey) await new Promise((r) => setTimeout(r, 100));
      })(),
    );
    expect(ids(await page(1, 5, cursorBefore)).length).toBe(5);
    for (let i = 0; i < 3; i++) {
      expect(logLines(i, 'redis available again')).toBe(1);
      expect(await metric(i, 'redis_unavailable ')).toEqual(['redis_unavailable 0']);
    }
  });

  it('Redis back: the failures counted during the outage are shared again (the user is refused on every replica, the IAM never locks it)', async () => {
    const before = await iamCalls();
    for (let i = 0; i < 6; i++) {
      const r = await signIn(i % 3, 'outage', password(USER, FORMS[i % 3]!, `again-${i}`));
      expect(r.errors?.[0]?.extensions).toMatchObject({ code: 'RATE_LIMITED', reason: 'SIGN_IN_GUARD' });
    }
    expect(await iamCalls()).toBe(before);
    expect(await lockedAtIam(USER)).toBe(false);
  });

  it('Redis back: the rate limit is shared again', async () => {
    const statuses = await spread('cluster-rate-limit-2', 45);
    const passed = statuses.filter((s) => s === 200).length;
    expect(passed).toBeGreaterThanOrEqual(20);
    expect(passed).toBeLessThanOrEqual(23);
    expect(statuses.slice(-6)).toEqual([429, 429, 429, 429, 429, 429]);
  });
});
