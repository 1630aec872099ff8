// The gateway's M2M access token against the emulator's IDaaS token endpoint, over real
// sockets: the three client authentication methods, caching and refresh (time driven through
// `now`), single flight, invalidation after a PAM 401, and the error mapping.
import { describe, expect, it } from 'vitest';
import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { startEmulator } from '../../src/emulator/index.ts';
import { IDAAS_TOKEN_PATH } from '../../src/emulator/oauth.ts';
import { DEMO_CONSUMERS, DEMO_CREDENTIAL_PROVIDERS, DEMO_INSTANCE_ID, DEMO_M2M_CLIENT, IDAAS_SCOPES } from '../../src/emulator/fixtures.ts';
import { M2mTokenClient, type ClientAuthMethod, type M2mTokenOptions } from '../../src/broker/m2m-token.ts';
import { UpstreamError } from '../../src/errors.ts';
import { useEmulator } from '../helpers.ts';

const C = DEMO_M2M_CLIENT;
const HOUR = 3600_000;

const emu = useEmulator();

/** A settable clock for the client. */
function clock() {
  const c = { t: Date.now(), now: () => c.t };
  return c;
}

function client(o: Partial<M2mTokenOptions> = {}): M2mTokenClient {
  const auth = o.clientAuth ?? 'client_secret_basic';
  return new M2mTokenClient({
    tokenEndpoint: `${emu.url}${IDAAS_TOKEN_PATH}`,
    clientId: C.clientId,
    clientAuth: auth,
    ...(auth === 'private_key_jwt' ? { privateKeyPem: C.privateKeyPem } : { clientSecret: C.clientSecret }),
    scope: IDAAS_SCOPES.all,
    timeoutMs: 2000,
    ...o,
  });
}

const tokenRequests = () => emu.counters()['idaas.token']?.requests ?? 0;

function list(token: string) {
  const qs = new URLSearchParams({ consumerId: DEMO_CONSUMERS.small, credentialProviderIdentifier: DEMO_CREDENTIAL_PROVIDERS.jwt.identifier });
  return fetch(`${emu.url}/v2/${DEMO_INSTANCE_ID}/authenticationTokens?${qs}`, { headers: { authorization: `Bearer ${token}` } });
}

async function failure(p: Promise<unknown>): Promise<UpstreamError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(UpstreamError);
  return e as UpstreamError;
}

/** Everything a caller or a log could see of an error. */
const visible = (e: UpstreamError) => JSON.stringify({ message: e.message, extensions: e.extensions, stack: e.stack });

describe('client authentication', () => {
  it.each<ClientAuthMethod>(['client_secret_basic', 'client_secret_post', 'private_key_jwt'])('%s gets a token PAM accepts', async (clientAuth) => {
    const token = await client({ clientAuth }).token();
    expect((await list(token)).status).toBe(200);
  });

  it('private_key_jwt with a PKCS#1 key', async () => {
    const pkcs1 = createPrivateKey(C.privateKeyPem).export({ type: 'pkcs1', format: 'pem' }).toString();
    expect(pkcs1).toMatch(/^-----BEGIN RSA PRIVATE KEY-----/);
    const token = await client({ clientAuth: 'private_key_jwt', privateKeyPem: pkcs1 }).token();
    expect((await list(token)).status).toBe(200);
  });

  it('refuses a configuration it cannot use, without quoting the key', () => {
    expect(() => client({ clientSecret: undefined })).toThrow(/clientSecret \(IDAAS_CLIENT_SECRET\)/);
    expect(() => client({ clientAuth: 'private_key_jwt', privateKeyPem: '' })).toThrow(/IDAAS_CLIENT_PRIVATE_KEY_FILE/);
    const garbage = '-----BEGIN PRIVATE KEY-----\nnot-a-key-c2VjcmV0\n-----END PRIVATE KEY-----';
    expect(() => client({ clientAuth: 'private_key_jwt', privateKeyPem: garbage })).toThrow(/not a PEM private key$/);
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    expect(() => client({ clientAuth: 'private_key_jwt', privateKeyPem: ec })).toThrow(/must be an RSA key/);
    expect(() => client({ tokenEndpoint: '/relative' })).toThrow(/absolute URL/);
  });
});

describe('cache and refresh', () => {
  it('a second token() makes no request', async () => {
    const c = client();
    const first = await c.token();
    expect(await c.token()).toBe(first);
    expect(tokenRequests()).toBe(1);
    expect(c.requests).toBe(1);
  });

  it('refreshes when a tenth of the lifetime (at most 60 s) is left', async () => {
    const t = clock();
    const c = client({ now: t.now, random: () => 0 });
    const first = await c.token();
    t.t += HOUR - 60_001; // 60.001 s left
    expect(await c.token()).toBe(first);
    expect(tokenRequests()).toBe(1);
    t.t += 1; // 60 s left
    const second = await c.token();
    expect(second).not.toBe(first);
    expect(tokenRequests()).toBe(2);
    expect((await list(second)).status).toBe(200);
  });

  it('a short-lived token refreshes at a tenth of its lifetime', async () => {
    await fetch(`${emu.url}/__emulator/idaas/access-token-ttl`, { method: 'POST', body: JSON.stringify({ seconds: 100 }) });
    const t = clock();
    const c = client({ now: t.now, random: () => 0 });
    const first = await c.token();
    t.t += 89_999;
    expect(await c.token()).toBe(first);
    t.t += 1;
    expect(await c.token()).not.toBe(first);
    expect(c.requests).toBe(2);
  });

  it('jitter moves the refresh later, but never past half the margin', async () => {
    const t = clock();
    const c = client({ now: t.now, random: () => 0.999999 });
    const first = await c.token();
    t.t += HOUR - 31_000;
    expect(await c.token()).toBe(first);
    t.t += 1_000; // 30 s left
    expect(await c.token()).not.toBe(first);
  });

  it('single flight: 50 concurrent calls with an expired cache make one request', async () => {
    const t = clock();
    const c = client({ now: t.now });
    const first = await c.token();
    t.t += HOUR;
    emu.inject({ route: 'idaas.token', latencyMs: 200, times: 1 });
    const tokens = await Promise.all(Array.from({ length: 50 }, () => c.token()));
    expect(new Set(tokens).size).toBe(1);
    expect(tokens[0]).not.toBe(first);
    expect(tokenRequests()).toBe(2);
    expect(emu.counters()['idaas.token']!.maxInFlight).toBe(1);
  });

  it('a failed refresh rejects every waiter, and the next call tries again', async () => {
    const c = client();
    emu.inject({ route: 'idaas.token', status: 503, latencyMs: 100, times: 1 });
    const results = await Promise.allSettled(Array.from({ length: 10 }, () => c.token()));
    expect(results.every((r) => r.status === 'rejected')).toBe(true);
    expect(tokenRequests()).toBe(1);
    expect((await list(await c.token())).status).toBe(200);
    expect(tokenRequests()).toBe(2);
  });

  it('a failed early refresh keeps serving the still-valid token, and tries again a second later', async () => {
    const t = clock();
    const c = client({ now: t.now, random: () => 0 });
    const first = await c.token();
    t.t += HOUR - 30_000;
    emu.inject({ route: 'idaas.token', status: 503, times: 1 });
    expect(await c.token()).toBe(first);
    expect(await c.token()).toBe(first);
    expect(tokenRequests()).toBe(2);
    t.t += 1_000;
    expect(await c.token()).not.toBe(first);
    expect(tokenRequests()).toBe(3);
  });
});

describe('invalidate', () => {
  it('after PAM refuses a revoked token, the next token() gets a new one', async () => {
    const c = client();
    const first = await c.token();
    emu.revokeAccessTokens();
    expect((await list(first)).status).toBe(401);
    c.invalidate(first);
    const second = await c.token();
    expect(second).not.toBe(first);
    expect((await list(second)).status).toBe(200);
  });

  it('an old token does not evict a newer one', async () => {
    const c = client();
    const first = await c.token();
    c.invalidate(first);
    const second = await c.token();
    c.invalidate(first);
    expect(await c.token()).toBe(second);
    expect(c.requests).toBe(2);
  });
});

describe('errors', () => {
  it('invalid_client is UPSTREAM_ERROR from idaas-token, without the secret', async () => {
    const secret = 'wrong-secret-4f9a2c7e1b';
    const e = await failure(client({ clientSecret: secret }).token());
    expect(e.extensions.code).toBe('UPSTREAM_ERROR');
    expect(e.extensions.upstream).toEqual({ service: 'idaas-token', status: 401, code: 'invalid_client', requestId: expect.any(String) });
    expect(e.message).toMatch(/^IDaaS token endpoint answered 401 invalid_client/);
    expect(visible(e)).not.toContain(secret);
  });

  it('a rejected private_key_jwt assertion and a refused scope are UPSTREAM_ERROR too', async () => {
    const otherKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const jwt = await failure(client({ clientAuth: 'private_key_jwt', privateKeyPem: otherKey }).token());
    expect(jwt.extensions.code).toBe('UPSTREAM_ERROR');
    expect(jwt.upstream.code).toBe('invalid_client');
    const scope = await failure(client({ scope: 'urn:cloud:idaas:other|admin' }).token());
    expect(scope.extensions.code).toBe('UPSTREAM_ERROR');
    expect(scope.upstream).toMatchObject({ service: 'idaas-token', status: 400, code: 'invalid_scope' });
  });

  it('an upstream message that echoes the secret is redacted', async () => {
    emu.inject({
      route: 'idaas.token',
      status: 401,
      body: { error: 'invalid_client', error_description: `client secret ${C.clientSecret} is wrong` },
      times: 1,
    });
    const e = await failure(client().token());
    expect(e.message).toContain('[REDACTED]');
    expect(visible(e)).not.toContain(C.clientSecret);
  });

  it('503 is UPSTREAM_UNAVAILABLE', async () => {
    emu.inject({ route: 'idaas.token', status: 503, times: 1 });
    const e = await failure(client().token());
    expect(e.extensions.code).toBe('UPSTREAM_UNAVAILABLE');
    expect(e.upstream).toMatchObject({ service: 'idaas-token', status: 503 });
    expect(visible(e)).not.toContain(C.clientSecret);
  });

  it('no answer within timeoutMs is UPSTREAM_TIMEOUT', async () => {
    emu.inject({ route: 'idaas.token', latencyMs: 1000, times: 1 });
    const started = Date.now();
    const e = await failure(client({ timeoutMs: 100 }).token());
    expect(Date.now() - started).toBeLessThan(900);
    expect(e.extensions.code).toBe('UPSTREAM_TIMEOUT');
    expect(e.upstream).toEqual({ service: 'idaas-token' });
  });

  it('a dropped connection and a refused one are UPSTREAM_UNAVAILABLE', async () => {
    emu.inject({ route: 'idaas.token', reset: true, times: 1 });
    expect((await failure(client().token())).extensions.code).toBe('UPSTREAM_UNAVAILABLE');

    const gone = await startEmulator({ port: 0 });
    await gone.close();
    const e = await failure(client({ tokenEndpoint: `${gone.url}${IDAAS_TOKEN_PATH}`, clientAuth: 'client_secret_post' }).token());
    expect(e.extensions.code).toBe('UPSTREAM_UNAVAILABLE');
    expect(e.message).toMatch(/ECONNREFUSED/);
    expect(visible(e)).not.toContain(C.clientSecret);
  });

  it('a 200 without an access token is UPSTREAM_ERROR (unreadable)', async () => {
    emu.inject({ route: 'idaas.token', status: 200, body: { token_type: 'Bearer', expires_in: 3600 }, times: 1 });
    const e = await failure(client().token());
    expect(e.extensions.code).toBe('UPSTREAM_ERROR');
    expect(e.message).toMatch(/cannot read/);
  });
});
