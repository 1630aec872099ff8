// Broker mode: verifying callers' OIDC tokens against the emulator's demo issuer, over real HTTP.
import { beforeEach, describe, expect, it } from 'vitest';
import { createHash, createPublicKey, type JsonWebKey as NodeJwk } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, decodeJwt, generateKeyPair, type JSONWebKeySet, type JWK } from 'jose';
import { DEMO_CALLER_AUDIENCE, DEMO_CALLERS } from '../../src/emulator/fixtures.ts';
import { CallerAuthenticator, type CallerAuthOptions } from '../../src/broker/caller.ts';
import { GatewayError } from '../../src/errors.ts';
import { useEmulator } from '../helpers.ts';

const emu = useEmulator();

/** The authenticator's clock; tests move it instead of sleeping. */
let clock = 0;
beforeEach(() => {
  clock = Date.now();
});

function authenticator(opts: Partial<CallerAuthOptions> = {}) {
  return new CallerAuthenticator({
    issuer: emu.oidc.issuer,
    audience: DEMO_CALLER_AUDIENCE,
    groupsClaim: 'groups',
    timeoutMs: 2000,
    now: () => clock,
    ...opts,
  });
}

const requests = (route: string) => emu.counters()[route]?.requests ?? 0;
const bearer = (token: string) => `Bearer ${token}`;
const admin = () => emu.oidc.sign({ sub: DEMO_CALLERS.admin.subject, groups: DEMO_CALLERS.admin.groups });
const b64url = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

async function issuerKey(): Promise<{ kid: string; jwk: JWK }> {
  const { keys } = (await (await fetch(`${emu.url}/oidc/jwks`)).json()) as JSONWebKeySet;
  return { kid: keys[0]!.kid!, jwk: keys[0]! };
}

/** Fails with `code` and a message matching `message` that quotes no part of `token`. */
async function expectFailure(p: Promise<unknown>, code: string, message: RegExp, token?: string): Promise<void> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(GatewayError);
  const err = e as GatewayError;
  expect({ code: err.code, message: err.message }).toEqual({ code, message: expect.stringMatching(message) });
  if (!token) return;
  const visible = `${err.message} ${JSON.stringify(err.extensions)}`;
  for (const part of token.split('.')) if (part.length >= 8) expect(visible).not.toContain(part);
}

describe('CallerAuthenticator: accepted tokens', () => {
  it('turns a good token into a Caller', async () => {
    await expect(authenticator().authenticate(bearer(await admin()))).resolves.toEqual({
      issuer: emu.oidc.issuer,
      subject: 'alice',
      groups: ['platform-admins'],
    });
    // The JWKS location came from the discovery document.
    expect([requests('oidc.discovery'), requests('oidc.jwks')]).toEqual([1, 1]);
  });

  it('reads groups from the configured claim; absent means none', async () => {
    const auth = authenticator({ groupsClaim: 'roles' });
    const withRoles = await emu.oidc.sign({ sub: 'carol', groups: ['ignored'], roles: ['auditors', 'readers'] });
    expect((await auth.authenticate(bearer(withRoles))).groups).toEqual(['auditors', 'readers']);
    const without = await emu.oidc.sign({ sub: 'dave' });
    expect(await auth.authenticate(bearer(without))).toMatchObject({ subject: 'dave', groups: [] });
  });

  it('accepts the scheme in any case and uses an explicit JWKS URL without discovery', async () => {
    const auth = authenticator({ jwksUrl: `${emu.url}/oidc/jwks` });
    await expect(auth.authenticate(`bearer ${await admin()}`)).resolves.toMatchObject({ subject: 'alice' });
    expect([requests('oidc.discovery'), requests('oidc.jwks')]).toEqual([0, 1]);
  });

  it('accepts a token expired less than 30 s ago (clock skew) and refuses one expired longer', async () => {
    const token = await admin();
    const exp = decodeJwt(token).exp! * 1000;
    clock = exp + 20_000;
    await expect(authenticator().authenticate(bearer(token))).resolves.toMatchObject({ subject: 'alice' });
    clock = exp + 31_000;
    await expectFailure(authenticator().authenticate(bearer(token)), 'UNAUTHENTICATED', /has expired/, token);
  });
});

describe('CallerAuthenticator: refused tokens are UNAUTHENTICATED without quoting the token', () => {
  const auth = () => authenticator();

  it('missing header, another scheme, not a JWT', async () => {
    await expectFailure(auth().authenticate(undefined), 'UNAUTHENTICATED', /no Authorization header/);
    await expectFailure(auth().authenticate(''), 'UNAUTHENTICATED', /no Authorization header/);
    const basic = `Basic ${Buffer.from('alice:password-secret').toString('base64')}`;
    await expectFailure(auth().authenticate(basic), 'UNAUTHENTICATED', /Bearer scheme/, basic);
    await expectFailure(auth().authenticate('Bearer not-a-jwt-at-all'), 'UNAUTHENTICATED', /not a well-formed JWT/, 'not-a-jwt-at-all');
    const garbage = 'eyJnb3QiOiJvbmUi.bm90IGpzb24gYXQgYWxs.c2lnbmF0dXJl';
    await expectFailure(auth().authenticate(bearer(garbage)), 'UNAUTHENTICATED', /not a well-formed JWT/, garbage);
  });

  it('alg "none" (an unsecured JWT)', async () => {
    const now = Math.floor(Date.now() / 1000);
    const claims = { iss: emu.oidc.issuer, aud: DEMO_CALLER_AUDIENCE, sub: 'mallory', groups: ['platform-admins'], iat: now, exp: now + 600 };
    const token = `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url(claims)}.`;
    await expectFailure(auth().authenticate(bearer(token)), 'UNAUTHENTICATED', /not signed with an allowed algorithm/, token);
  });

  it("HS256 keyed with the issuer's public key (algorithm confusion)", async () => {
    const { kid, jwk } = await issuerKey();
    const pem = createPublicKey({ key: jwk as NodeJwk, format: 'jwk' }).export({ type: 'spki', format: 'pem' });
    for (const secret of [String(pem), JSON.stringify(jwk)]) {
      const token = await new SignJWT({ groups: ['platform-admins'] })
        .setProtectedHeader({ alg: 'HS256', typ: 'JWT', kid })
        .setIssuer(emu.oidc.issuer)
        .setAudience(DEMO_CALLER_AUDIENCE)
        .setSubject('mallory')
        .setIssuedAt()
        .setExpirationTime('10m')
        .sign(new TextEncoder().encode(secret));
      await expectFailure(auth().authenticate(bearer(token)), 'UNAUTHENTICATED', /not signed with an allowed algorithm/, token);
    }
  });

  it('signed by another key under the same kid', async () => {
    const { kid } = await issuerKey();
    const { privateKey } = await generateKeyPair('RS256');
    const token = await new SignJWT({ groups: ['platform-admins'] })
      .setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid })
      .setIssuer(emu.oidc.issuer)
      .setAudience(DEMO_CALLER_AUDIENCE)
      .setSubject('mallory')
      .setIssuedAt()
      .setExpirationTime('10m')
      .sign(privateKey);
    await expectFailure(auth().authenticate(bearer(token)), 'UNAUTHENTICATED', /signature does not verify/, token);
  });

  it('expired, not yet valid, wrong issuer, wrong audience', async () => {
    const expired = await emu.oidc.sign({ sub: 'alice', expiresInSeconds: -60 });
    await expectFailure(auth().authenticate(bearer(expired)), 'UNAUTHENTICATED', /has expired/, expired);

    const early = await emu.oidc.sign({ sub: 'alice', nbf: Math.floor(Date.now() / 1000) + 600 });
    await expectFailure(auth().authenticate(bearer(early)), 'UNAUTHENTICATED', /not valid yet/, early);

    const foreign = await emu.oidc.sign({ sub: 'alice', iss: 'https://idp.other.example' });
    const issuerMessage = new RegExp(`not issued by the configured issuer \\(${emu.oidc.issuer.replace(/[.]/g, '\\.')}\\)`);
    await expectFailure(auth().authenticate(bearer(foreign)), 'UNAUTHENTICATED', issuerMessage, foreign);

    const elsewhere = await emu.oidc.sign({ sub: 'alice', aud: 'another-api' });
    await expectFailure(auth().authenticate(bearer(elsewhere)), 'UNAUTHENTICATED', /not meant for this gateway \(audience token-gateway\)/, elsewhere);
  });

  it('no sub, groups not an array of strings', async () => {
    const anonymous = await emu.oidc.sign({ sub: undefined as unknown as string, groups: ['readers'] });
    await expectFailure(auth().authenticate(bearer(anonymous)), 'UNAUTHENTICATED', /no "sub" claim/, anonymous);

    const scalar = await emu.oidc.sign({ sub: 'alice', groups: 'platform-admins' as unknown as string[] });
    await expectFailure(auth().authenticate(bearer(scalar)), 'UNAUTHENTICATED', /"groups" claim must be an array of strings/, scalar);
    const mixed = await emu.oidc.sign({ sub: 'alice', groups: ['readers', 42] as unknown as string[] });
    await expectFailure(auth().authenticate(bearer(mixed)), 'UNAUTHENTICATED', /"groups" claim must be an array of strings/, mixed);
  });
});

describe('CallerAuthenticator: keys and cache', () => {
  it('refetches the JWKS for an unknown kid after the issuer rotates, at most once per 30 s', async () => {
    const auth = authenticator();
    await auth.authenticate(bearer(await admin()));
    expect(requests('oidc.jwks')).toBe(1);

    emu.oidc.rotateKey();
    const rotated = await admin();
    clock += 31_000;
    await expect(auth.authenticate(bearer(rotated))).resolves.toMatchObject({ subject: 'alice' });
    expect(requests('oidc.jwks')).toBe(2);

    // Straight after a fetch, an unknown kid does not make the gateway hammer the issuer.
    emu.oidc.rotateKey();
    const again = await admin();
    await expectFailure(auth.authenticate(bearer(again)), 'UNAUTHENTICATED', /key the issuer does not publish/, again);
    expect(requests('oidc.jwks')).toBe(2);
    clock += 31_000;
    await expect(auth.authenticate(bearer(again))).resolves.toMatchObject({ subject: 'alice' });
    expect(requests('oidc.jwks')).toBe(3);
  });

  it('serves a repeated token from a cache keyed by its hash, until the token expires', async () => {
    const auth = authenticator();
    const token = await admin();
    await auth.authenticate(bearer(token));
    // Past the JWKS max age: a fresh verification would refetch the keys, a cache hit does not.
    clock += 11 * 60_000;
    await expect(auth.authenticate(bearer(token))).resolves.toMatchObject({ subject: 'alice' });
    expect([requests('oidc.discovery'), requests('oidc.jwks')]).toEqual([1, 1]);

    const cache = (auth as unknown as { cache: Map<string, unknown> }).cache;
    const keys = [...cache.keys()];
    expect(keys).toEqual([createHash('sha256').update(token).digest('base64url')]);
    const stored = JSON.stringify([...cache.entries()]);
    for (const part of token.split('.')) expect(stored).not.toContain(part);

    // The cache never outlives the token.
    clock = decodeJwt(token).exp! * 1000 + 31_000;
    await expectFailure(auth.authenticate(bearer(token)), 'UNAUTHENTICATED', /has expired/, token);
  });

  it('discovery down: UPSTREAM_UNAVAILABLE, and the next call tries again', async () => {
    const auth = authenticator();
    const token = await admin();
    emu.inject({ route: 'oidc.discovery', status: 503 });
    await expectFailure(auth.authenticate(bearer(token)), 'UPSTREAM_UNAVAILABLE', /discovery document answered HTTP 503/, token);
    await expectFailure(auth.authenticate(bearer(token)), 'UPSTREAM_UNAVAILABLE', /discovery document/, token);
    expect(requests('oidc.discovery')).toBe(2);
    emu.reset();
    await expect(auth.authenticate(bearer(token))).resolves.toMatchObject({ subject: 'alice' });
  });

  it('JWKS down or unreachable issuer: UPSTREAM_UNAVAILABLE, and the next call tries again', async () => {
    const auth = authenticator();
    const token = await admin();
    emu.inject({ route: 'oidc.jwks', status: 503, times: 1 });
    await expectFailure(auth.authenticate(bearer(token)), 'UPSTREAM_UNAVAILABLE', /JWKS could not be loaded/, token);
    await expect(auth.authenticate(bearer(token))).resolves.toMatchObject({ subject: 'alice' });

    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise((resolve) => closed.close(resolve));
    const nowhere = authenticator({ issuer: `http://127.0.0.1:${port}/oidc` });
    await expectFailure(nowhere.authenticate(bearer(token)), 'UPSTREAM_UNAVAILABLE', /ECONNREFUSED/, token);
  });

  it('refuses a discovery document that names another issuer', async () => {
    // The emulator serves its issuer as 127.0.0.1; "localhost" reaches it under another name.
    const issuer = emu.oidc.issuer.replace('127.0.0.1', 'localhost');
    const token = await emu.oidc.sign({ sub: 'alice', iss: issuer });
    await expectFailure(authenticator({ issuer }).authenticate(bearer(token)), 'UPSTREAM_UNAVAILABLE', /names a different issuer/, token);
  });
});
