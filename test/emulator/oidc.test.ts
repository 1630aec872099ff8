// The emulator's demo OIDC issuer for broker-mode callers, over real HTTP.
import { describe, expect, it } from 'vitest';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import { DEMO_CALLER_AUDIENCE, DEMO_CALLERS } from '../../src/emulator/fixtures.ts';
import { startEmulator } from '../../src/emulator/index.ts';
import { useEmulator } from '../helpers.ts';

const emu = useEmulator();

async function getJson(path: string): Promise<{ status: number; body: any; contentType: string | null }> {
  const res = await fetch(`${emu.url}${path}`);
  return { status: res.status, body: await res.json(), contentType: res.headers.get('content-type') };
}

const jwks = async () => (await getJson('/oidc/jwks')).body as JSONWebKeySet;

describe('OIDC issuer', () => {
  it('publishes a discovery document naming its issuer and JWKS', async () => {
    const { status, body } = await getJson('/oidc/.well-known/openid-configuration');
    expect(status).toBe(200);
    expect(emu.oidc.issuer).toBe(`${emu.url}/oidc`);
    expect(body).toMatchObject({
      issuer: emu.oidc.issuer,
      jwks_uri: `${emu.url}/oidc/jwks`,
      id_token_signing_alg_values_supported: ['RS256'],
    });
    expect(emu.counters()['oidc.discovery']?.requests).toBe(1);
  });

  it('signs tokens that its JWKS verifies, with the default claims', async () => {
    const { status, body, contentType } = await getJson('/oidc/jwks');
    expect(status).toBe(200);
    expect(contentType).toMatch(/^application\/jwk-set\+json/);
    expect(body.keys).toHaveLength(1);
    expect(body.keys[0]).toMatchObject({ kty: 'RSA', alg: 'RS256', use: 'sig', kid: expect.any(String) });
    expect(body.keys[0]).not.toHaveProperty('d');

    const { subject, groups } = DEMO_CALLERS.admin;
    const token = await emu.oidc.sign({ sub: subject, groups });
    const { payload, protectedHeader } = await jwtVerify(token, createLocalJWKSet(body), {
      issuer: emu.oidc.issuer,
      audience: DEMO_CALLER_AUDIENCE,
      algorithms: ['RS256'],
    });
    expect(protectedHeader.kid).toBe(body.keys[0].kid);
    expect(payload).toMatchObject({ sub: 'alice', groups: ['platform-admins'] });
    expect(payload.exp! - payload.iat!).toBe(3600);
    expect(Math.abs(payload.iat! - Date.now() / 1000)).toBeLessThan(5);
  });

  it('rotateKey() serves a new kid only, and signs with it', async () => {
    const before = (await jwks()).keys[0]!.kid;
    emu.oidc.rotateKey();
    const after = await jwks();
    expect(after.keys).toHaveLength(1);
    expect(after.keys[0]!.kid).not.toBe(before);
    const token = await emu.oidc.sign({ sub: 'alice' });
    expect(decodeProtectedHeader(token).kid).toBe(after.keys[0]!.kid);
    await expect(jwtVerify(token, createLocalJWKSet(after))).resolves.toBeTruthy();
  });

  it('makes its key on first use: a token and the JWKS asked for at once share it', async () => {
    const fresh = await startEmulator({ port: 0 });
    try {
      const [token, res] = await Promise.all([fresh.oidc.sign({ sub: 'alice' }), fetch(`${fresh.url}/oidc/jwks`)]);
      const set = (await res.json()) as JSONWebKeySet;
      expect(set.keys).toHaveLength(1);
      expect(decodeProtectedHeader(token).kid).toBe(set.keys[0]!.kid);
      await expect(jwtVerify(token, createLocalJWKSet(set))).resolves.toBeTruthy();
    } finally {
      await fresh.close();
    }
  });

  it('answers faults on its routes in a plain JSON dialect', async () => {
    emu.inject({ route: 'oidc.jwks', status: 503, times: 1 });
    const res = await fetch(`${emu.url}/oidc/jwks`);
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ error: 'service_unavailable', error_description: expect.any(String) });
    expect((await fetch(`${emu.url}/oidc/jwks`)).status).toBe(200);
  });
});

describe('control POST /__emulator/oidc/token', () => {
  const mint = (body: unknown) =>
    fetch(`${emu.url}/__emulator/oidc/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  it('mints a token with the asked claims', async () => {
    const res = await mint({ sub: 'bob', groups: ['readers'], aud: 'other-api', expiresInSeconds: 120 });
    expect(res.status).toBe(200);
    const { token } = (await res.json()) as { token: string };
    const { payload } = await jwtVerify(token, createLocalJWKSet(await jwks()), { issuer: emu.oidc.issuer, audience: 'other-api' });
    expect(payload).toMatchObject({ sub: 'bob', groups: ['readers'], aud: 'other-api' });
    expect(payload.exp! - payload.iat!).toBe(120);
  });

  it('refuses a request without sub', async () => {
    const res = await mint({ groups: ['readers'] });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toMatch(/^sub: /);
  });
});
