// createIamToken / createScopedIamToken / iamEndpoints through the gateway, against the
// embedded IAM emulator (Huawei / Orange Business Cloud IAM, Keystone v3 style).
// Every call passes `{}` as headers: IAM operations carry their credentials in the input.
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { authenticator } from 'otplib';
import { fieldFailure, fieldValue, onlyError, startStack, type GqlResult, type Stack } from '../helpers.ts';
import { CREATE, RESCOPE } from '../iam-documents.ts';
import { defaultConfig } from '../../src/config.ts';
import {
  DEMO_IAM_CATALOG,
  DEMO_IAM_DOMAIN,
  DEMO_IAM_FEDERATED,
  DEMO_IAM_PROJECTS,
  DEMO_IAM_USERS,
  IAM_LOCKOUT,
  IAM_TOKEN_LIFETIME_MS,
} from '../../src/emulator/fixtures.ts';

const USER = DEMO_IAM_USERS.password;
const MFA = DEMO_IAM_USERS.mfa;
const PROJECT = DEMO_IAM_PROJECTS.euWest0;
const NO_AUTH: Record<string, string> = {};
const TOKEN_VALUE = /^MII[A-Za-z0-9_-]{20,}$/;
const ISO_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;
const UUID = /^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$/i;
const DAY_MS = 24 * 3_600_000;

// ---------------------------------------------------------------- documents




// ---------------------------------------------------------------- helpers

/** The demo catalog as the gateway names it. */
const GATEWAY_CATALOG = DEMO_IAM_CATALOG.map((s) => ({
  id: s.id,
  type: s.type,
  name: s.name,
  endpoints: s.endpoints.map((e) => ({ id: e.id, url: e.url, region: e.region, regionId: e.region_id, interface: e.interface })),
}));

const passwordOf = (u: typeof USER | typeof MFA, password = u.password) => ({
  userName: u.name,
  domainName: u.domain.name,
  password,
});

/** The fixture's `2027-06-30T00:00:00.000000Z` as the DateTime scalar prints it. */
const isoOf = (s: string) => new Date(s.replace(/(\.\d{3})\d*Z$/, '$1Z')).toISOString();

/** A 6-digit code that the IAM does not accept now (outside ±3 steps of the current one). */
function wrongPasscode(secret: string): string {
  const wide = authenticator.clone({ window: 3 });
  for (let n = 135_792; ; n = (n + 104_729) % 1_000_000) {
    const code = String(n).padStart(6, '0');
    if (!wide.check(code, secret)) return code;
  }
}

function iamCalls(stack: Stack): number {
  return stack.emulator.counters()['iam.createToken']?.requests ?? 0;
}

const tokenOf = (r: GqlResult<any>, field = 'createIamToken') => fieldValue(r, field);
const failureOf = (r: GqlResult<any>, code: string, field = 'createIamToken') => fieldFailure(r, code, field);

// A tiny recording proxy in front of the emulator, configured as a second IAM endpoint. It lets
// a test see the exchange the gateway had with the IAM (query string, headers, raw body).
interface Exchange {
  method: string;
  url: string;
  requestHeaders: IncomingHttpHeaders;
  requestBody: any;
  status: number;
  responseHeaders: Record<string, string>;
  responseBody: any;
}

interface Recorder {
  url: string;
  target: string;
  exchanges: Exchange[];
  close(): Promise<void>;
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length', 'content-encoding']);

async function startRecorder(): Promise<Recorder> {
  const recorder: Recorder = { url: '', target: '', exchanges: [], close: async () => {} };
  const server = createServer(async (req, res) => {
    try {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const body = Buffer.concat(chunks).toString('utf8');
      const upstream = await fetch(`${recorder.target}${req.url}`, {
        method: req.method,
        headers: { 'content-type': String(req.headers['content-type'] ?? 'application/json') },
        body: body.length > 0 ? body : undefined,
      });
      const text = await upstream.text();
      const headers: Record<string, string> = {};
      upstream.headers.forEach((v, k) => {
        if (!HOP_BY_HOP.has(k)) headers[k] = v;
      });
      recorder.exchanges.push({
        method: req.method ?? '',
        url: req.url ?? '',
        requestHeaders: req.headers,
        requestBody: body ? JSON.parse(body) : undefined,
        status: upstream.status,
        responseHeaders: headers,
        responseBody: text ? JSON.parse(text) : undefined,
      });
      res.writeHead(upstream.status, headers);
      res.end(text);
    } catch {
      res.writeHead(502).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  recorder.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  recorder.close = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  return recorder;
}

/** Locks the user at the IAM itself (straight at the emulator, whatever the gateway adds in front). */
async function lockAtIam(emulatorUrl: string, user: typeof USER | typeof MFA): Promise<void> {
  for (let i = 0; i < IAM_LOCKOUT.maxFailures; i++) {
    const res = await fetch(`${emulatorUrl}/v3/auth/tokens`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        auth: {
          identity: {
            methods: ['password'],
            password: { user: { name: user.name, domain: { name: user.domain.name }, password: `wrong-${i}` } },
          },
        },
      }),
    });
    expect(res.status).toBe(401);
    await res.arrayBuffer();
  }
}

// ---------------------------------------------------------------- the main stack

describe('IAM tokens', () => {
  let stack: Stack;
  let recorder: Recorder;

  const create = (input: Record<string, unknown>) => stack.gql(CREATE, { input }, NO_AUTH);
  const rescope = (input: Record<string, unknown>) => stack.gql(RESCOPE, { input }, NO_AUTH);

  beforeAll(async () => {
    recorder = await startRecorder();
    stack = await startStack((c) => ({
      iam: { endpoints: [...c.iam.endpoints, { name: 'recorder', url: recorder.url }] },
    }));
    recorder.target = stack.emulator.url;
  });
  beforeEach(() => {
    stack.emulator.reset();
    recorder.exchanges.length = 0;
  });
  afterAll(async () => {
    await stack?.close();
    await recorder?.close();
  });

  // ---------------------------------------------------------------- endpoints

  describe('iamEndpoints', () => {
    it('lists the configured names, the first as default, with no URL and no IAM call', async () => {
      const r = await stack.gql('{ iamEndpoints { name isDefault } }', {}, NO_AUTH);
      expect(r.errors).toBeUndefined();
      expect(r.data.iamEndpoints).toEqual([
        { name: 'emulator', isDefault: true },
        { name: 'recorder', isDefault: false },
      ]);
      expect(JSON.stringify(r.data)).not.toContain(stack.emulator.url);
      expect(iamCalls(stack)).toBe(0);
    });

    it('a token names the endpoint that issued it; a named endpoint is the one called', async () => {
      const viaDefault = tokenOf(await create({ password: passwordOf(USER) }));
      expect(viaDefault.endpoint).toEqual({ name: 'emulator', isDefault: true });
      expect(recorder.exchanges).toHaveLength(0);

      const viaNamed = tokenOf(await create({ endpoint: 'recorder', password: passwordOf(USER) }));
      expect(viaNamed.endpoint).toEqual({ name: 'recorder', isDefault: false });
      expect(recorder.exchanges).toHaveLength(1);
      expect(recorder.exchanges[0]).toMatchObject({ method: 'POST', status: 201 });
      expect(recorder.exchanges[0]!.url).toMatch(/^\/v3\/auth\/tokens(\?|$)/);
      expect(iamCalls(stack)).toBe(2);
    });

    it('an unknown endpoint name is BAD_USER_INPUT and no IAM call is made', async () => {
      const err = failureOf(await create({ endpoint: 'nowhere', password: passwordOf(USER) }), 'BAD_USER_INPUT');
      expect(err.message).toContain('nowhere');
      expect(err.message).not.toContain(stack.emulator.url);
      const err2 = failureOf(
        await rescope({ endpoint: 'http://evil.example', token: DEMO_IAM_FEDERATED.token, scope: { domain: { id: DEMO_IAM_DOMAIN.id } } }),
        'BAD_USER_INPUT',
        'createScopedIamToken',
      );
      expect(err2.extensions.upstream).toBeUndefined();
      expect(iamCalls(stack)).toBe(0);
    });
  });

  // ---------------------------------------------------------------- password sign-in

  describe('createIamToken with a password', () => {
    it('by userName + domainName, unscoped: the whole token', async () => {
      const before = Date.now();
      const tok = tokenOf(await create({ password: passwordOf(USER) }));
      expect(tok.value).toMatch(TOKEN_VALUE);
      expect(tok.methods).toEqual(['password']);
      expect(tok.issuedAt).toMatch(ISO_UTC);
      expect(tok.expiresAt).toMatch(ISO_UTC);
      expect(Date.parse(tok.expiresAt) - Date.parse(tok.issuedAt)).toBe(IAM_TOKEN_LIFETIME_MS);
      expect(Date.parse(tok.issuedAt)).toBeGreaterThanOrEqual(before - 1000);
      expect(tok.expiresIn).toBeGreaterThanOrEqual(86_400 - 60);
      expect(tok.expiresIn).toBeLessThanOrEqual(86_400);
      expect(tok.expired).toBe(false);
      expect(tok.mfaAuthenticatedAt).toBeNull();
      expect(tok.user).toEqual({
        id: USER.id,
        name: USER.name,
        domain: DEMO_IAM_DOMAIN,
        passwordExpiresAt: null,
        federation: null,
      });
      expect(tok.domain).toBeNull();
      expect(tok.project).toBeNull();
      expect(tok.catalog).toEqual([]);
      expect(tok.roles).toEqual([]);
      expect(tok.endpoint).toEqual({ name: 'emulator', isDefault: true });
      expect(iamCalls(stack)).toBe(1);
    });

    it('by userId', async () => {
      const tok = tokenOf(await create({ password: { userId: USER.id, password: USER.password } }));
      expect(tok.user.id).toBe(USER.id);
      expect(tok.user.name).toBe(USER.name);
      expect(tok.methods).toEqual(['password']);
    });

    it('by userName + domainId', async () => {
      const tok = tokenOf(
        await create({ password: { userName: USER.name, domainId: DEMO_IAM_DOMAIN.id, password: USER.password } }),
      );
      expect(tok.user).toMatchObject({ id: USER.id, domain: DEMO_IAM_DOMAIN });
    });

    it('every sign-in gets its own non-empty token value', async () => {
      const a = tokenOf(await create({ password: passwordOf(USER) }));
      const b = tokenOf(await create({ password: passwordOf(USER) }));
      expect(a.value).not.toBe('');
      expect(b.value).not.toBe('');
      expect(a.value).not.toBe(b.value);
      expect(iamCalls(stack)).toBe(2);
    });

    it('project-scoped by id: project, roles and catalog', async () => {
      const tok = tokenOf(await create({ password: passwordOf(USER), scope: { project: { id: PROJECT.id } } }));
      expect(tok.project).toEqual({ id: PROJECT.id, name: PROJECT.name, domain: DEMO_IAM_DOMAIN });
      expect(tok.domain).toBeNull();
      expect(tok.roles).toEqual(USER.roles);
      expect(tok.catalog).toEqual(GATEWAY_CATALOG);
    });

    it('project-scoped by name + domain name, and by name + domain id', async () => {
      const byName = tokenOf(
        await create({
          password: passwordOf(USER),
          scope: { project: { name: PROJECT.name, domain: { name: DEMO_IAM_DOMAIN.name } } },
        }),
      );
      expect(byName.project).toEqual({ id: PROJECT.id, name: PROJECT.name, domain: DEMO_IAM_DOMAIN });
      const other = DEMO_IAM_PROJECTS.apSoutheast1;
      const byDomainId = tokenOf(
        await create({ password: passwordOf(USER), scope: { project: { name: other.name, domain: { id: DEMO_IAM_DOMAIN.id } } } }),
      );
      expect(byDomainId.project).toEqual({ id: other.id, name: other.name, domain: DEMO_IAM_DOMAIN });
    });

    it('domain-scoped by id and by name', async () => {
      for (const domain of [{ id: DEMO_IAM_DOMAIN.id }, { name: DEMO_IAM_DOMAIN.name }]) {
        const tok = tokenOf(await create({ password: passwordOf(USER), scope: { domain } }));
        expect(tok.domain).toEqual(DEMO_IAM_DOMAIN);
        expect(tok.project).toBeNull();
        expect(tok.roles).toEqual(USER.roles);
        expect(tok.catalog).toEqual(GATEWAY_CATALOG);
      }
      expect(iamCalls(stack)).toBe(2);
    });

    it('scope { unscoped: true } asks the IAM for an unscoped token explicitly ("scope": "unscoped")', async () => {
      const tok = tokenOf(await create({ endpoint: 'recorder', password: passwordOf(USER), scope: { unscoped: true } }));
      expect(tok.project).toBeNull();
      expect(tok.domain).toBeNull();
      expect(tok.roles).toEqual([]);
      expect(recorder.exchanges.at(-1)!.requestBody.auth.scope).toBe('unscoped');
    });

    it('scope { unscoped: false } or unscoped beside a project is BAD_USER_INPUT with no IAM call', async () => {
      for (const scope of [{ unscoped: false }, { unscoped: true, project: { id: PROJECT.id } }]) {
        failureOf(await create({ password: passwordOf(USER), scope }), 'BAD_USER_INPUT');
      }
      expect(iamCalls(stack)).toBe(0);
    });

    it('includeCatalog: false → catalog [], the IAM was asked with ?nocatalog and sent no catalog', async () => {
      const scope = { project: { id: PROJECT.id } };
      const without = tokenOf(await create({ endpoint: 'recorder', password: passwordOf(USER), scope, includeCatalog: false }));
      expect(without.catalog).toEqual([]);
      expect(without.roles).toEqual(USER.roles);
      expect(without.project.id).toBe(PROJECT.id);

      const withIt = tokenOf(await create({ endpoint: 'recorder', password: passwordOf(USER), scope }));
      expect(withIt.catalog).toEqual(GATEWAY_CATALOG);

      expect(recorder.exchanges).toHaveLength(2);
      const [omitted, full] = recorder.exchanges;
      expect(new URL(omitted!.url, 'http://x').searchParams.has('nocatalog')).toBe(true);
      expect(omitted!.responseBody.token).not.toHaveProperty('catalog');
      expect(new URL(full!.url, 'http://x').searchParams.has('nocatalog')).toBe(false);
      expect(full!.responseBody.token.catalog).toHaveLength(DEMO_IAM_CATALOG.length);
    });

    it('sends a Keystone password body and no Authorization header to the IAM', async () => {
      tokenOf(await create({ endpoint: 'recorder', password: passwordOf(USER), scope: { domain: { name: DEMO_IAM_DOMAIN.name } } }));
      const ex = recorder.exchanges[0]!;
      expect(ex.requestHeaders.authorization).toBeUndefined();
      expect(ex.requestHeaders['content-type']).toMatch(/^application\/json/);
      expect(ex.requestBody).toEqual({
        auth: {
          identity: {
            methods: ['password'],
            password: { user: { name: USER.name, domain: { name: DEMO_IAM_DOMAIN.name }, password: USER.password } },
          },
          scope: { domain: { name: DEMO_IAM_DOMAIN.name } },
        },
      });
    });

    it('a wrong password is UNAUTHENTICATED after exactly one IAM call (never retried)', async () => {
      const err = failureOf(await create({ password: passwordOf(USER, 'not-the-password') }), 'UNAUTHENTICATED');
      expect(err.extensions.upstream).toMatchObject({ service: 'iam', status: 401 });
      expect(err.extensions.upstream.requestId).toMatch(UUID);
      expect(iamCalls(stack)).toBe(1);
    });

    it('an unknown user is UNAUTHENTICATED, like a wrong password', async () => {
      failureOf(await create({ password: { userName: 'nobody', domainName: DEMO_IAM_DOMAIN.name, password: 'x' } }), 'UNAUTHENTICATED');
      expect(iamCalls(stack)).toBe(1);
    });
  });

  // ---------------------------------------------------------------- MFA

  describe('createIamToken for a user with virtual MFA', () => {
    it('the right password without totp is MFA_REQUIRED with the methods to use, no receipt', async () => {
      const err = failureOf(await create({ password: passwordOf(MFA) }), 'MFA_REQUIRED');
      expect(err.extensions.requiredMethods).toEqual([['password', 'totp']]);
      expect(err.extensions.upstream).toMatchObject({ service: 'iam', status: 401 });
      expect(err.extensions).not.toHaveProperty('receipt');
      expect(err.message).toMatch(/totp/);
      expect(iamCalls(stack)).toBe(1);
    });

    it('password + the current passcode → a token with methods password+totp and mfaAuthenticatedAt', async () => {
      const passcode = authenticator.generate(MFA.totpSecret);
      const tok = tokenOf(
        await create({ password: passwordOf(MFA), totp: { userId: MFA.id, passcode }, scope: { project: { id: PROJECT.id } } }),
      );
      expect(tok.value).toMatch(TOKEN_VALUE);
      expect([...tok.methods].sort()).toEqual(['password', 'totp']);
      expect(tok.mfaAuthenticatedAt).toMatch(ISO_UTC);
      expect(tok.mfaAuthenticatedAt).toBe(tok.issuedAt);
      expect(tok.user).toEqual({
        id: MFA.id,
        name: MFA.name,
        domain: DEMO_IAM_DOMAIN,
        passwordExpiresAt: isoOf(MFA.passwordExpiresAt),
        federation: null,
      });
      expect(tok.roles).toEqual(MFA.roles);
      expect(iamCalls(stack)).toBe(1);
    });

    it('the MFA sign-in works by userId as well', async () => {
      const passcode = authenticator.generate(MFA.totpSecret);
      const tok = tokenOf(await create({ password: { userId: MFA.id, password: MFA.password }, totp: { userId: MFA.id, passcode } }));
      expect(tok.user.id).toBe(MFA.id);
      expect(tok.mfaAuthenticatedAt).not.toBeNull();
    });

    it('a wrong 6-digit passcode is UNAUTHENTICATED after one IAM call', async () => {
      const err = failureOf(
        await create({ password: passwordOf(MFA), totp: { userId: MFA.id, passcode: wrongPasscode(MFA.totpSecret) } }),
        'UNAUTHENTICATED',
      );
      expect(err.extensions.upstream).toMatchObject({ service: 'iam', status: 401 });
      expect(iamCalls(stack)).toBe(1);
    });

    it('a passcode that is not 6 digits is BAD_USER_INPUT with no IAM call', async () => {
      for (const passcode of ['12345', '1234567', 'abcdef', '', '12 456']) {
        failureOf(await create({ password: passwordOf(MFA), totp: { userId: MFA.id, passcode } }), 'BAD_USER_INPUT');
      }
      expect(iamCalls(stack)).toBe(0);
    });
  });

  // ---------------------------------------------------------------- lockout

  describe('lockout', () => {
    it("the IAM's lock is surfaced as RATE_LIMITED, reason USER_LOCKED, even for the right password; 15 min later it works", async () => {
      await lockAtIam(stack.emulator.url, USER);
      const callsBefore = iamCalls(stack);
      const err = failureOf(await create({ password: passwordOf(USER) }), 'RATE_LIMITED');
      expect(err.extensions.reason).toBe('USER_LOCKED');
      expect(err.extensions.upstream).toMatchObject({ service: 'iam', status: 401 });
      expect(err.message).toMatch(/locked/i);
      expect(iamCalls(stack) - callsBefore).toBe(1);

      stack.emulator.advanceClock(IAM_LOCKOUT.lockMs + 1000);
      expect(tokenOf(await create({ password: passwordOf(USER) })).user.id).toBe(USER.id);
    });

    it('the lock is per user: another user still signs in', async () => {
      await lockAtIam(stack.emulator.url, USER);
      const passcode = authenticator.generate(MFA.totpSecret);
      tokenOf(await create({ password: passwordOf(MFA), totp: { userId: MFA.id, passcode } }));
    });
  });

  // ---------------------------------------------------------------- rescoping

  describe('createScopedIamToken', () => {
    const FEDERATION = {
      groups: DEMO_IAM_FEDERATED.federation.groups,
      identityProviderId: 'ACME',
      protocolId: 'saml',
    };

    it('the federated token to a project by name + domain', async () => {
      const tok = tokenOf(
        await rescope({
          token: DEMO_IAM_FEDERATED.token,
          scope: { project: { name: PROJECT.name, domain: { name: DEMO_IAM_DOMAIN.name } } },
        }),
        'createScopedIamToken',
      );
      expect(tok.methods).toEqual(['token']);
      expect(tok.value).toMatch(TOKEN_VALUE);
      expect(tok.value).not.toBe(DEMO_IAM_FEDERATED.token);
      expect(tok.user).toEqual({
        id: DEMO_IAM_FEDERATED.user.id,
        name: DEMO_IAM_FEDERATED.user.name,
        domain: DEMO_IAM_DOMAIN,
        passwordExpiresAt: null,
        federation: FEDERATION,
      });
      expect(tok.project).toEqual({ id: PROJECT.id, name: PROJECT.name, domain: DEMO_IAM_DOMAIN });
      expect(tok.domain).toBeNull();
      expect(tok.roles).toEqual(DEMO_IAM_FEDERATED.roles);
      expect(tok.catalog).toEqual(GATEWAY_CATALOG);
      expect(tok.expired).toBe(false);
      expect(tok.endpoint).toEqual({ name: 'emulator', isDefault: true });
      expect(iamCalls(stack)).toBe(1);
    });

    it('the federated token to a domain (by id and by name)', async () => {
      for (const domain of [{ id: DEMO_IAM_DOMAIN.id }, { name: DEMO_IAM_DOMAIN.name }]) {
        const tok = tokenOf(await rescope({ token: DEMO_IAM_FEDERATED.token, scope: { domain } }), 'createScopedIamToken');
        expect(tok.domain).toEqual(DEMO_IAM_DOMAIN);
        expect(tok.project).toBeNull();
        expect(tok.methods).toEqual(['token']);
        expect(tok.user.federation).toEqual(FEDERATION);
      }
    });

    it('rescoping with includeCatalog: false returns catalog []', async () => {
      const tok = tokenOf(
        await rescope({ token: DEMO_IAM_FEDERATED.token, scope: { project: { id: PROJECT.id } }, includeCatalog: false }),
        'createScopedIamToken',
      );
      expect(tok.catalog).toEqual([]);
      expect(tok.roles).toEqual(DEMO_IAM_FEDERATED.roles);
    });

    it('an unscoped token from createIamToken rescoped to a project keeps its user and expiry', async () => {
      const unscoped = tokenOf(await create({ password: passwordOf(USER) }));
      expect(unscoped.project).toBeNull();
      const scoped = tokenOf(
        await rescope({ token: unscoped.value, scope: { project: { id: PROJECT.id } } }),
        'createScopedIamToken',
      );
      expect(scoped.methods).toEqual(['token']);
      expect(scoped.value).not.toBe(unscoped.value);
      expect(scoped.user).toEqual(unscoped.user);
      expect(scoped.project).toEqual({ id: PROJECT.id, name: PROJECT.name, domain: DEMO_IAM_DOMAIN });
      expect(scoped.roles).toEqual(USER.roles);
      expect(scoped.expiresAt).toBe(unscoped.expiresAt);
      expect(iamCalls(stack)).toBe(2);
    });

    it('a garbage token is UNAUTHENTICATED (the IAM answered 404 "Could not find token")', async () => {
      const err = failureOf(
        await rescope({ token: 'MIIgarbage-not-a-token', scope: { domain: { id: DEMO_IAM_DOMAIN.id } } }),
        'UNAUTHENTICATED',
        'createScopedIamToken',
      );
      expect(err.extensions.upstream).toMatchObject({ service: 'iam', status: 404 });
      expect(err.extensions.reason).toBe('TOKEN_NOT_ACCEPTED');
      expect(err.message).toBe('The IAM does not accept this token: it is unknown, malformed or expired.');
      expect(iamCalls(stack)).toBe(1);
    });

    it('an expired token (24 h + 1 s after issue) is UNAUTHENTICATED', async () => {
      const unscoped = tokenOf(await create({ password: passwordOf(USER) }));
      stack.emulator.advanceClock(DAY_MS + 1000);
      const err = failureOf(
        await rescope({ token: unscoped.value, scope: { project: { id: PROJECT.id } } }),
        'UNAUTHENTICATED',
        'createScopedIamToken',
      );
      expect(err.extensions.upstream).toMatchObject({ service: 'iam', status: 404 });
      expect(iamCalls(stack)).toBe(2);
    });

    it('an unknown project is NOT_FOUND with upstream status 404', async () => {
      const err = failureOf(
        await rescope({ token: DEMO_IAM_FEDERATED.token, scope: { project: { id: 'ffffffffffffffffffffffffffffffff' } } }),
        'NOT_FOUND',
        'createScopedIamToken',
      );
      expect(err.extensions.upstream).toMatchObject({ service: 'iam', status: 404 });
      expect(iamCalls(stack)).toBe(1);
    });

    it('an unknown project for a password sign-in is NOT_FOUND too', async () => {
      const err = failureOf(
        await create({ password: passwordOf(USER), scope: { project: { name: 'nowhere-1', domain: { name: DEMO_IAM_DOMAIN.name } } } }),
        'NOT_FOUND',
      );
      expect(err.extensions.upstream).toMatchObject({ service: 'iam', status: 404 });
    });

    it("a scope in another account is UNAUTHENTICATED (the IAM answers its generic 401)", async () => {
      const err = failureOf(
        await create({ password: passwordOf(USER), scope: { domain: { name: 'other-domain' } } }),
        'UNAUTHENTICATED',
      );
      expect(err.extensions.upstream).toMatchObject({ service: 'iam', status: 401 });
    });

    it('an unknown endpoint is BAD_USER_INPUT and no IAM call', async () => {
      failureOf(
        await rescope({ endpoint: 'nope', token: DEMO_IAM_FEDERATED.token, scope: { domain: { id: DEMO_IAM_DOMAIN.id } } }),
        'BAD_USER_INPUT',
        'createScopedIamToken',
      );
      expect(iamCalls(stack)).toBe(0);
    });
  });

  // ---------------------------------------------------------------- input validation

  describe('invalid input is BAD_USER_INPUT with no IAM call', () => {
    const cases: [string, Record<string, unknown>][] = [
      ['both userId and userName', { password: { userId: USER.id, userName: USER.name, domainName: DEMO_IAM_DOMAIN.name, password: USER.password } }],
      ['userName without a domain', { password: { userName: USER.name, password: USER.password } }],
      ['userName with both domainName and domainId', { password: { userName: USER.name, domainName: DEMO_IAM_DOMAIN.name, domainId: DEMO_IAM_DOMAIN.id, password: USER.password } }],
      ['neither userId nor userName', { password: { domainName: DEMO_IAM_DOMAIN.name, password: USER.password } }],
      ['an empty password', { password: passwordOf(USER, '') }],
      ['a scope with both project and domain', { password: passwordOf(USER), scope: { project: { id: PROJECT.id }, domain: { id: DEMO_IAM_DOMAIN.id } } }],
      ['an empty scope', { password: passwordOf(USER), scope: {} }],
      ['a project name without its domain', { password: passwordOf(USER), scope: { project: { name: PROJECT.name } } }],
      ['a project with both id and name', { password: passwordOf(USER), scope: { project: { id: PROJECT.id, name: PROJECT.name, domain: { id: DEMO_IAM_DOMAIN.id } } } }],
      ['a domain with both id and name', { password: passwordOf(USER), scope: { domain: { id: DEMO_IAM_DOMAIN.id, name: DEMO_IAM_DOMAIN.name } } }],
      ['neither password nor receipt + totp', {}],
      ['totp alone, without password or receipt', { totp: { userId: MFA.id, passcode: '123456' } }],
      ['an empty userName', { password: { userName: '', domainName: DEMO_IAM_DOMAIN.name, password: USER.password } }],
    ];

    it.each(cases)('createIamToken: %s', async (_name, input) => {
      const err = failureOf(await create(input), 'BAD_USER_INPUT');
      expect(err.extensions.upstream).toBeUndefined();
      expect(iamCalls(stack)).toBe(0);
    });

    const scopedCases: [string, Record<string, unknown>][] = [
      ['an empty token', { token: '', scope: { domain: { id: DEMO_IAM_DOMAIN.id } } }],
      ['a scope with both project and domain', { token: DEMO_IAM_FEDERATED.token, scope: { project: { id: PROJECT.id }, domain: { id: DEMO_IAM_DOMAIN.id } } }],
      ['an empty scope', { token: DEMO_IAM_FEDERATED.token, scope: {} }],
      ['a project name without its domain', { token: DEMO_IAM_FEDERATED.token, scope: { project: { name: PROJECT.name } } }],
    ];

    it.each(scopedCases)('createScopedIamToken: %s', async (_name, input) => {
      const err = failureOf(await rescope(input), 'BAD_USER_INPUT', 'createScopedIamToken');
      expect(err.extensions.upstream).toBeUndefined();
      expect(iamCalls(stack)).toBe(0);
    });

    // Variables that do not even coerce to the input type (a typo in a field name, a passcode
    // sent as a number) fail the whole request before any resolver runs. The contract still
    // wants every failure to carry `extensions.code`.
    const coercionCases: [string, string, Record<string, unknown>][] = [
      ['createIamToken: a misspelt field (domain for domainName)', CREATE, { password: { userName: USER.name, domain: DEMO_IAM_DOMAIN.name, password: USER.password } }],
      ['createIamToken: a passcode sent as a number', CREATE, { password: passwordOf(MFA), totp: { userId: MFA.id, passcode: 123456 } }],
      ['createIamToken: an unknown top-level field', CREATE, { password: passwordOf(USER), project: PROJECT.id }],
      ['createScopedIamToken: an unknown field beside the token', RESCOPE, { token: DEMO_IAM_FEDERATED.token, scope: { domain: { id: DEMO_IAM_DOMAIN.id } }, catalog: false }],
      ['createScopedIamToken: no scope', RESCOPE, { token: DEMO_IAM_FEDERATED.token }],
    ];

    it.each(coercionCases)('%s → BAD_USER_INPUT, no data, no IAM call', async (_name, query, input) => {
      const r = await stack.gql(query, { input }, NO_AUTH);
      const err = onlyError(r);
      expect(r.data ?? null).toBeNull();
      expect(err.message).toMatch(/input/);
      expect(err.extensions?.code, `${err.message} has no extensions.code`).toBe('BAD_USER_INPUT');
      expect(iamCalls(stack)).toBe(0);
    });
  });

  // ---------------------------------------------------------------- upstream faults

  describe('IAM faults', () => {
    const validBody = () => {
      const now = Date.now();
      const iso = (ms: number) => new Date(ms).toISOString().replace(/Z$/, '000Z');
      return {
        token: {
          methods: ['password'],
          issued_at: iso(now),
          expires_at: iso(now + DAY_MS),
          user: { id: USER.id, name: USER.name, domain: DEMO_IAM_DOMAIN, password_expires_at: '' },
          catalog: [],
          roles: [],
        },
      };
    };

    it('503 is UPSTREAM_UNAVAILABLE after exactly one call (minting is never retried)', async () => {
      stack.emulator.inject({ route: 'iam.createToken', status: 503 });
      const err = failureOf(await create({ password: passwordOf(USER) }), 'UPSTREAM_UNAVAILABLE');
      expect(err.extensions.upstream).toMatchObject({ service: 'iam', status: 503 });
      expect(iamCalls(stack)).toBe(1);
    });

    it('503 on rescoping is not retried either', async () => {
      stack.emulator.inject({ route: 'iam.createToken', status: 503 });
      failureOf(
        await rescope({ token: DEMO_IAM_FEDERATED.token, scope: { domain: { id: DEMO_IAM_DOMAIN.id } } }),
        'UPSTREAM_UNAVAILABLE',
        'createScopedIamToken',
      );
      expect(iamCalls(stack)).toBe(1);
    });

    it('a connection reset is UPSTREAM_UNAVAILABLE after exactly one call (not retried)', async () => {
      stack.emulator.inject({ route: 'iam.createToken', reset: true });
      const err = failureOf(await create({ password: passwordOf(USER) }), 'UPSTREAM_UNAVAILABLE');
      expect(err.extensions.upstream).toMatchObject({ service: 'iam' });
      expect(iamCalls(stack)).toBe(1);
    });

    it('500 is UPSTREAM_ERROR after exactly one call', async () => {
      stack.emulator.inject({ route: 'iam.createToken', status: 500 });
      const err = failureOf(await create({ password: passwordOf(USER) }), 'UPSTREAM_ERROR');
      expect(err.extensions.upstream).toMatchObject({ service: 'iam', status: 500 });
      expect(iamCalls(stack)).toBe(1);
    });

    it("Keystone's real 404 wording (quoting the token) on rescoping is UNAUTHENTICATED", async () => {
      stack.emulator.inject({
        route: 'iam.createToken',
        status: 404,
        body: { error: { code: 404, title: 'Not Found', message: `Could not find token: ${DEMO_IAM_FEDERATED.token}.` } },
      });
      const err = failureOf(
        await rescope({ token: DEMO_IAM_FEDERATED.token, scope: { domain: { id: DEMO_IAM_DOMAIN.id } } }),
        'UNAUTHENTICATED',
        'createScopedIamToken',
      );
      expect(err.extensions.upstream).toMatchObject({ service: 'iam', status: 404 });
      expect(JSON.stringify(err)).not.toContain(DEMO_IAM_FEDERATED.token);
    });

    it("a Keystone MFA receipt is MFA_REQUIRED with extensions.receipt and the required methods", async () => {
      stack.emulator.inject({
        route: 'iam.createToken',
        status: 401,
        headers: { 'Openstack-Auth-Receipt': 'rcpt-demo-0001' },
        body: {
          receipt: { methods: ['password'], expires_at: '2030-01-01T00:05:00.000000Z', user: { id: MFA.id, name: MFA.name } },
          required_auth_methods: [['password', 'totp']],
        },
      });
      const err = failureOf(await create({ password: passwordOf(MFA) }), 'MFA_REQUIRED');
      expect(err.extensions.receipt).toBe('rcpt-demo-0001');
      expect(err.extensions.requiredMethods).toEqual([['password', 'totp']]);
      expect(err.extensions.upstream).toMatchObject({ service: 'iam', status: 401 });
    });

    it('receipt + totp continues the sign-in: the receipt goes in Openstack-Auth-Receipt, methods [totp]', async () => {
      const passcode = authenticator.generate(MFA.totpSecret);
      // The Huawei-like emulator has no receipts and rejects a totp-only sign-in with 400.
      const err = failureOf(
        await create({ endpoint: 'recorder', receipt: 'rcpt-demo-0002', totp: { userId: MFA.id, passcode } }),
        'BAD_USER_INPUT',
      );
      expect(err.extensions.upstream).toMatchObject({ service: 'iam', status: 400 });
      const ex = recorder.exchanges[0]!;
      expect(ex.requestHeaders['openstack-auth-receipt']).toBe('rcpt-demo-0002');
      expect(ex.requestBody.auth.identity).toEqual({ methods: ['totp'], totp: { user: { id: MFA.id, passcode } } });
      expect(iamCalls(stack)).toBe(1);
    });

    it('malformed JSON is UPSTREAM_ERROR', async () => {
      stack.emulator.inject({ route: 'iam.createToken', malformed: true });
      const err = failureOf(await create({ password: passwordOf(USER) }), 'UPSTREAM_ERROR');
      expect(err.extensions.upstream).toMatchObject({ service: 'iam' });
      expect(iamCalls(stack)).toBe(1);
    });

    it('a 201 with a valid body is a token when X-Subject-Token is present (control case)', async () => {
      stack.emulator.inject({
        route: 'iam.createToken',
        status: 201,
        body: validBody(),
        headers: { 'X-Subject-Token': 'MIIinjectedSubjectToken0001' },
        times: 1,
      });
      const tok = tokenOf(await create({ password: passwordOf(USER) }));
      expect(tok.value).toBe('MIIinjectedSubjectToken0001');
      expect(tok.user.id).toBe(USER.id);
    });

    it('a 201 without X-Subject-Token is UPSTREAM_ERROR', async () => {
      stack.emulator.inject({ route: 'iam.createToken', status: 201, body: validBody() });
      const err = failureOf(await create({ password: passwordOf(USER) }), 'UPSTREAM_ERROR');
      expect(err.extensions.upstream).toMatchObject({ service: 'iam', status: 201 });
      expect(err.message).toMatch(/X-Subject-Token/i);
      expect(iamCalls(stack)).toBe(1);
    });

    it('a 201 whose body is not a token is UPSTREAM_ERROR', async () => {
      stack.emulator.inject({
        route: 'iam.createToken',
        status: 201,
        body: { token: { methods: ['password'] } },
        headers: { 'X-Subject-Token': 'MIIinjectedSubjectToken0002' },
      });
      failureOf(await create({ password: passwordOf(USER) }), 'UPSTREAM_ERROR');
    });

    it("Huawei's {error_code, error_msg, request_id} with 400 is BAD_USER_INPUT with the upstream code and request id", async () => {
      stack.emulator.inject({
        route: 'iam.createToken',
        status: 400,
        body: { error_code: 'IAM.0001', error_msg: 'The request body is invalid.', request_id: 'abc' },
      });
      const err = failureOf(await create({ password: passwordOf(USER) }), 'BAD_USER_INPUT');
      expect(err.extensions.upstream).toEqual({ service: 'iam', status: 400, code: 'IAM.0001', requestId: 'abc' });
      expect(iamCalls(stack)).toBe(1);
    });

    it('two mutations in one request, one failing: the other still returns its token', async () => {
      const r = await stack.gql(
        /* GraphQL */ `
          mutation Two($good: CreateIamTokenInput!, $bad: CreateIamTokenInput!) {
            good: createIamToken(input: $good) { value methods user { id } }
            bad: createIamToken(input: $bad) { value }
          }
        `,
        { good: { password: passwordOf(USER) }, bad: { password: passwordOf(USER, 'wrong-password') } },
        NO_AUTH,
      );
      expect(r.status).toBe(200);
      expect(r.data.good).toMatchObject({ methods: ['password'], user: { id: USER.id } });
      expect(r.data.good.value).toMatch(TOKEN_VALUE);
      expect(r.data.bad).toBeNull();
      const err = onlyError(r);
      expect(err.path).toEqual(['bad']);
      expect(err.extensions.code).toBe('UNAUTHENTICATED');
      expect(iamCalls(stack)).toBe(2);
    });

    it('createIamToken and createScopedIamToken side by side, the first failing', async () => {
      stack.emulator.inject({ route: 'iam.createToken', status: 503, times: 1 });
      const r = await stack.gql(
        /* GraphQL */ `
          mutation Two($a: CreateIamTokenInput!, $b: CreateScopedIamTokenInput!) {
            a: createIamToken(input: $a) { value }
            b: createScopedIamToken(input: $b) { value methods domain { id } }
          }
        `,
        { a: { password: passwordOf(USER) }, b: { token: DEMO_IAM_FEDERATED.token, scope: { domain: { id: DEMO_IAM_DOMAIN.id } } } },
        NO_AUTH,
      );
      expect(r.data.a).toBeNull();
      expect(r.data.b).toMatchObject({ methods: ['token'], domain: { id: DEMO_IAM_DOMAIN.id } });
      const err = onlyError(r);
      expect(err.path).toEqual(['a']);
      expect(err.extensions.code).toBe('UPSTREAM_UNAVAILABLE');
    });
  });
});

// ---------------------------------------------------------------- lockout through the gateway

describe('IAM lockout through the gateway, with its own sign-in guard off', () => {
  let stack: Stack;
  const create = (input: Record<string, unknown>) => stack.gql(CREATE, { input }, NO_AUTH);

  beforeAll(async () => {
    stack = await startStack((c) => ({ iamGuard: { ...c.iamGuard, maxFailures: 0 } }));
  });
  beforeEach(() => {
    stack.emulator.reset();
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('5 wrong passwords, then the right one → RATE_LIMITED USER_LOCKED; 15 min later it works', async () => {
    for (let i = 0; i < IAM_LOCKOUT.maxFailures; i++) {
      failureOf(await create({ password: passwordOf(USER, `wrong-password-${i}`) }), 'UNAUTHENTICATED');
    }
    expect(iamCalls(stack)).toBe(IAM_LOCKOUT.maxFailures);

    const err = failureOf(await create({ password: passwordOf(USER) }), 'RATE_LIMITED');
    expect(err.extensions.reason).toBe('USER_LOCKED');
    expect(err.extensions.upstream).toMatchObject({ service: 'iam', status: 401 });
    expect(err.message).toMatch(/locked/i);
    expect(iamCalls(stack)).toBe(IAM_LOCKOUT.maxFailures + 1);

    stack.emulator.advanceClock(IAM_LOCKOUT.lockMs + 1000);
    expect(tokenOf(await create({ password: passwordOf(USER) })).user.id).toBe(USER.id);
  });
});

describe("IAM lockout through the gateway, with its sign-in guard at the default setting", () => {
  let stack: Stack;
  const create = (input: Record<string, unknown>) => stack.gql(CREATE, { input }, NO_AUTH);

  beforeAll(async () => {
    // test/helpers.ts turns the guard off for tests not about it; this one is.
    stack = await startStack(() => ({ iamGuard: defaultConfig().iamGuard }));
  });
  beforeEach(() => {
    stack.emulator.reset();
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('a client repeating a wrong password cannot get the user locked at the IAM', async () => {
    const codes: string[] = [];
    for (let i = 0; i < IAM_LOCKOUT.maxFailures + 2; i++) {
      const r = await create({ password: passwordOf(USER, `wrong-password-${i}`) });
      expect(r.data.createIamToken).toBeNull();
      codes.push(onlyError(r).extensions.code);
    }
    expect(codes[0]).toBe('UNAUTHENTICATED');
    expect(codes.at(-1)).toBe('RATE_LIMITED');
    expect(iamCalls(stack)).toBeLessThan(IAM_LOCKOUT.maxFailures);

    // The IAM itself still accepts the right password: the account was never locked.
    const res = await fetch(`${stack.emulator.url}/v3/auth/tokens?nocatalog`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        auth: { identity: { methods: ['password'], password: { user: { id: USER.id, password: USER.password } } } },
      }),
    });
    expect(res.status).toBe(201);
    await res.arrayBuffer();
  });
});

// ---------------------------------------------------------------- a stack with a short timeout

describe('IAM timeout', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await startStack((c) => ({ upstream: { ...c.upstream, timeoutMs: 200 } }));
  });
  beforeEach(() => {
    stack.emulator.reset();
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('a slow IAM is UPSTREAM_TIMEOUT, after one call', async () => {
    stack.emulator.inject({ route: 'iam.createToken', latencyMs: 1000 });
    const r = await stack.gql(CREATE, { input: { password: passwordOf(USER) } }, NO_AUTH);
    const err = failureOf(r, 'UPSTREAM_TIMEOUT');
    expect(err.extensions.upstream).toMatchObject({ service: 'iam' });
    expect(iamCalls(stack)).toBe(1);
  });

  it('after the slow answer, the next sign-in on the same stack works', async () => {
    const r = await stack.gql(CREATE, { input: { password: passwordOf(USER) } }, NO_AUTH);
    expect(tokenOf(r).user.id).toBe(USER.id);
  });
});
