// The emulator's cross-cutting machinery over real HTTP: fault injection (programmatic and
// through the control API), counters, the clock, reset, and routing errors.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type Emulator, type Fault, type RouteCounters } from '../../src/emulator/index.ts';
import { DEMO_ACCESS_TOKENS, DEMO_CLOUD_ACCOUNT_ROLES, DEMO_CONSUMERS, DEMO_CREDENTIAL_PROVIDERS, DEMO_INSTANCE_ID } from '../../src/emulator/fixtures.ts';
import { expectIdaasError } from './helpers.ts';
import { useEmulator } from '../helpers.ts';

const LIST = 'idaas.listAuthenticationTokens';
const ROLE = 'idaas.obtainAccessCredential';
const AUTH = { authorization: `Bearer ${DEMO_ACCESS_TOKENS.full.token}` };

const emu = useEmulator();

function list(extra = '', base = emu.url) {
  const query = new URLSearchParams({
    consumerId: DEMO_CONSUMERS.small,
    credentialProviderIdentifier: DEMO_CREDENTIAL_PROVIDERS.jwt.identifier,
  });
  return fetch(`${base}/v2/${DEMO_INSTANCE_ID}/authenticationTokens?${query}${extra}`, { headers: AUTH });
}

function roleCredential() {
  const query = new URLSearchParams({
    cloudAccountRoleExternalId: DEMO_CLOUD_ACCOUNT_ROLES.alibaba.cloudAccountRoleExternalId,
  });
  const path = `/v2/${DEMO_INSTANCE_ID}/cloudAccountRoles/_/actions/obtainAccessCredential`;
  return fetch(`${emu.url}${path}?${query}`, { headers: AUTH });
}

/** A string body is sent as is, so tests can send broken JSON. */
function control(path: string, method = 'GET', body?: unknown) {
  if (body === undefined) return fetch(`${emu.url}/__emulator${path}`, { method });
  return fetch(`${emu.url}/__emulator${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

async function expectOk(res: Response): Promise<void> {
  const text = await res.text();
  expect(res.status, text).toBe(200);
}

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const start = performance.now();
  const result = await fn();
  return [result, performance.now() - start];
}

// ------------------------------------------------------------------ faults, both ways in

/** Every fault test runs once with `emulator.inject` and once through POST /__emulator/faults. */
const injectors: [string, (fault: Fault) => Promise<void>][] = [
  ['emulator.inject', async (fault) => emu.inject(fault)],
  [
    'POST /__emulator/faults',
    async (fault) => {
      const res = await control('/faults', 'POST', fault);
      expect(res.status).toBe(201);
      expect(await res.json()).toEqual(fault);
    },
  ],
];

describe.each(injectors)('faults via %s', (_, inject) => {
  it('answers an injected 503 in the route dialect, then recovers', async () => {
    await inject({ route: LIST, status: 503, times: 1 });
    await expectIdaasError(await list(), 503, 'service_unavailable');
    await expectOk(await list());
  });

  it('answers an injected 429 throttling with Retry-After', async () => {
    await inject({ route: LIST, status: 429, headers: { 'Retry-After': '1' }, times: 1 });
    const res = await list();
    await expectIdaasError(res, 429, 'throttling');
    expect(res.headers.get('retry-after')).toBe('1');
  });

  it('consumes `times` and leaves other routes alone', async () => {
    await inject({ route: LIST, status: 500, times: 2 });
    await expectOk(await roleCredential());
    await expectIdaasError(await list(), 500, 'internal_error');
    await expectIdaasError(await list(), 500, 'internal_error');
    await expectOk(await list());
    expect(emu.state.faults).toEqual([]);
    expect(emu.counters()[LIST]?.requests).toBe(3);
  });

  it('keeps a fault without `times` until it is cleared, and `*` matches every route', async () => {
    await inject({ route: '*', status: 503 });
    for (let i = 0; i < 3; i++) await expectIdaasError(await list(), 503, 'service_unavailable');
    await expectIdaasError(await roleCredential(), 503, 'service_unavailable');
    emu.reset();
    await expectOk(await list());
  });

  it('answers a given body verbatim (e.g. the older {Code, Message, RequestId} dialect)', async () => {
    const body = { Code: 'EntityNotExist.Instance', Message: 'The instance does not exist.', RequestId: 'REQ-1' };
    await inject({ route: LIST, status: 404, body, times: 1 });
    const res = await list();
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual(body);
  });

  it('delays by latencyMs', async () => {
    const latencyMs = 150;
    await inject({ route: LIST, latencyMs, times: 1 });
    const [res, elapsed] = await timed(list);
    await expectOk(res);
    expect(elapsed).toBeGreaterThanOrEqual(latencyMs);
  });

  it('answers malformed JSON', async () => {
    await inject({ route: LIST, malformed: true, times: 1 });
    const res = await list();
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(() => JSON.parse(text)).toThrow(SyntaxError);
  });

  it('resets the connection', async () => {
    await inject({ route: LIST, reset: true, times: 1 });
    await expect(list()).rejects.toThrow();
    await expectOk(await list());
  });

  it('cuts a body off after the status and headers', async () => {
    await inject({ route: LIST, truncated: true, times: 1 });
    const res = await list();
    expect(res.status).toBe(200);
    expect(res.headers.get('content-length')).toBe('4096');
    await expect(res.text()).rejects.toThrow();
    await expectOk(await list());
  });

  it('counts concurrent slow requests in maxInFlight', async () => {
    await inject({ route: LIST, latencyMs: 200, times: 3 });
    const responses = await Promise.all([list(), list(), list()]);
    for (const res of responses) await expectOk(res);
    expect(emu.counters()[LIST]).toEqual({ requests: 3, inFlight: 0, maxInFlight: expect.any(Number) });
    expect(emu.counters()[LIST]!.maxInFlight).toBeGreaterThanOrEqual(3);
  });
});

// ------------------------------------------------------------------ the rest of the control API

describe('control API', () => {
  it('lists and clears faults', async () => {
    await control('/faults', 'POST', { route: LIST, status: 503 });
    expect(await (await control('/faults')).json()).toEqual([{ route: LIST, status: 503 }]);
    expect((await control('/faults', 'DELETE')).status).toBe(204);
    expect(await (await control('/faults')).json()).toEqual([]);
    await expectOk(await list());
  });

  it('rejects a fault without a route or with a body that is not JSON', async () => {
    expect((await control('/faults', 'POST', { status: 503 })).status).toBe(400);
    expect((await control('/faults', 'POST', '{"route":')).status).toBe(400);
    expect(emu.state.faults).toEqual([]);
  });

  it('counts requests per route', async () => {
    await list();
    await list();
    await roleCredential();
    await fetch(`${emu.url}/v2/${DEMO_INSTANCE_ID}/nowhere`); // unrouted: counted nowhere
    const counters = (await (await control('/counters')).json()) as Record<string, RouteCounters>;
    expect(counters).toEqual({
      [LIST]: { requests: 2, inFlight: 0, maxInFlight: 1 },
      [ROLE]: { requests: 1, inFlight: 0, maxInFlight: 1 },
    });
  });

  it('advances the clock, and reset puts it back with counters and faults', async () => {
    const unexpired = async () => ((await (await list('&expired=false')).json()) as { totalCount: number }).totalCount;
    const before = await unexpired();
    expect(before).toBeGreaterThan(0);

    const advanceMs = Date.UTC(2040, 0, 1) - Date.now();
    const res = await control('/clock', 'POST', { advanceMs });
    expect(res.status).toBe(200);
    const { now } = (await res.json()) as { now: string };
    expect(Date.parse(now)).toBeGreaterThanOrEqual(Date.UTC(2040, 0, 1));
    expect(await unexpired()).toBe(0);

    await control('/faults', 'POST', { route: ROLE, status: 503 });
    expect((await control('/reset', 'POST')).status).toBe(204);
    expect(await (await control('/counters')).json()).toEqual({});
    expect(await unexpired()).toBe(before);
    await expectOk(await roleCredential());
  });

  it('rejects a clock move that is not a number', async () => {
    expect((await control('/clock', 'POST', { advanceMs: '1h' })).status).toBe(400);
    expect((await control('/clock', 'POST', 'nope')).status).toBe(400);
  });

  it('answers 404 for an unknown control route', async () => {
    expect((await control('/nope')).status).toBe(404);
  });
});

// ------------------------------------------------------------------ routing errors

describe('routing', () => {
  it('answers an unknown path with 404 in the IDaaS dialect', async () => {
    const unknownUnderInstance = await fetch(`${emu.url}/v2/${DEMO_INSTANCE_ID}/nowhere`, { headers: AUTH });
    await expectIdaasError(unknownUnderInstance, 404, 'not_found');
    await expectIdaasError(await fetch(`${emu.url}/nowhere`), 404, 'not_found');
  });

  it('answers an unknown /v3 path in the IAM dialect', async () => {
    const res = await fetch(`${emu.url}/v3/nowhere`);
    expect(res.status).toBe(404);
    expect(res.headers.get('x-request-id')).toBeTruthy();
    expect(await res.json()).toMatchObject({ error: { code: 404 } });
  });

  it('answers a wrong method on a known path with 405', async () => {
    const base = `${emu.url}/v2/${DEMO_INSTANCE_ID}/authenticationTokens`;
    await expectIdaasError(await fetch(base, { method: 'DELETE', headers: AUTH }), 405, 'method_not_allowed');
    await expectIdaasError(await fetch(`${base}/_/actions/obtainJwt`, { headers: AUTH }), 405, 'method_not_allowed');
  });

  it('answers a path with a malformed percent-encoding with 400, not 500', async () => {
    const res = await fetch(`${emu.url}/v2/%E0%A4%A/authenticationTokens`, { headers: AUTH });
    await expectIdaasError(res, 400, 'invalid_request');
  });
});

describe('startEmulator({ control: false, latencyMs })', () => {
  let quiet: Emulator;
  beforeAll(async () => {
    quiet = await startEmulator({ port: 0, control: false, latencyMs: 50 });
  });
  afterAll(async () => {
    await quiet.close();
  });

  it('serves no control API: its paths are plain upstream 404s', async () => {
    await expectIdaasError(await fetch(`${quiet.url}/__emulator/counters`), 404, 'not_found');
    const post = await fetch(`${quiet.url}/__emulator/faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ route: '*', status: 503 }),
    });
    await expectIdaasError(post, 404, 'not_found');
    expect(quiet.state.faults).toEqual([]);
  });

  it('adds latencyMs to every upstream answer', async () => {
    const [res, elapsed] = await timed(() => list('', quiet.url));
    await expectOk(res);
    expect(elapsed).toBeGreaterThanOrEqual(50);
  });
});
