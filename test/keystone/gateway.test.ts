/**
 * The whole gateway (createGateway via startStack) against the REAL OpenStack Keystone
 * started by test/keystone/global-setup.ts, configured as the named IAM endpoint `keystone`.
 * GraphQL mutations with variables, exactly as a client sends them.
 *
 * Keystone facts these tests rely on (seen on Keystone 22.0.2, see keystone-raw.test.ts):
 * - tokens live [token] expiration = info.tokenTtlSeconds (1 h; Huawei's live 24 h);
 * - a password sign-in without a scope is scoped to the user's default project when it has
 *   one (the seeded users do), so a truly unscoped token needs a user without one: beforeAll
 *   creates throw-away users over Keystone's admin REST API;
 * - wrong password, wrong passcode, unknown project or domain (also when rescoping) and
 *   garbage receipt all answer the same generic 401 `{"error": {...}}`; a garbage token
 *   (method `token`, valid scope) answers 404 "Could not recognize Fernet token", a revoked
 *   one 404 "Failed to validate token" (not "Could not find token");
 * - an MFA user's password alone answers 401 + `Openstack-Auth-Receipt` + top-level
 *   `required_auth_methods` (in Keystone's own order, e.g. [["totp","password"]]);
 * - every answer carries `x-openstack-request-id: req-<uuid>` (not `X-Request-Id`).
 */
import { randomBytes } from 'node:crypto';
import { authenticator } from 'otplib';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { fieldFailure, fieldValue, startStack, type GqlResult, type Stack } from '../helpers.ts';
import type { KeystoneInfo } from './keystone-info.ts';
import { CREATE, RESCOPE } from '../iam-documents.ts';

const ks: KeystoneInfo = inject('keystone');
if (!ks?.url) {
  throw new Error("no Keystone provided: add 'test/keystone/global-setup.ts' to test.globalSetup in the vitest config");
}

const ENDPOINT = 'keystone';
const NO_AUTH: Record<string, string> = {};
const TTL_MS = ks.tokenTtlSeconds * 1000;
const ISO_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;
const KEYSTONE_REQUEST_ID = /^req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const PASSWORD_USER = ks.users.password;
const MFA_USER = ks.users.mfa;
const DOMAIN = { id: ks.domain.id, name: ks.domain.name };

// ---------------------------------------------------------------- documents




// ---------------------------------------------------------------- secrets seen by this file

/** label → value of everything secret this file sent or received; none may reach a log line. */
const secrets = new Map<string, string>();
const remember = (label: string, value: string | null | undefined) => {
  if (value) secrets.set(`${label} #${secrets.size}`, value);
  return value ?? '';
};

remember('password of gw-user', PASSWORD_USER.password);
remember('password of gw-mfa-user', MFA_USER.password);
remember('TOTP secret of gw-mfa-user', MFA_USER.totpSecret);
remember('Keystone admin password', ks.admin.password);

function passcode(): string {
  return remember('passcode', authenticator.generate(MFA_USER.totpSecret));
}

/** A 6-digit code Keystone does not accept now (outside ±3 steps of the current one). */
function wrongPasscode(): string {
  const wide = authenticator.clone({ window: 3 });
  for (let n = 135_792; ; n = (n + 104_729) % 1_000_000) {
    const code = String(n).padStart(6, '0');
    if (!wide.check(code, MFA_USER.totpSecret)) return remember('wrong passcode', code);
  }
}

const wrongPassword = (label: string) => remember(`wrong password (${label})`, `Wrong-${randomBytes(12).toString('base64url')}`);

// ---------------------------------------------------------------- Keystone admin REST (setup only)

interface Raw {
  status: number;
  headers: Headers;
  json: any;
}

async function keystone(method: string, path: string, body?: unknown, token?: string, headers: Record<string, string> = {}): Promise<Raw> {
  const res = await fetch(`${ks.url}${path}`, {
    method,
    headers: {
      accept: 'application/json',
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...(token ? { 'x-auth-token': token } : {}),
      ...headers,
    },
    body: body !== undefined ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(15_000),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, json: text ? JSON.parse(text) : undefined };
}

async function adminToken(): Promise<string> {
  const r = await keystone('POST', '/v3/auth/tokens?nocatalog', {
    auth: {
      identity: {
        methods: ['password'],
        password: { user: { name: ks.admin.name, domain: { id: ks.admin.domainId }, password: ks.admin.password } },
      },
      scope: { project: { name: ks.admin.projectName, domain: { id: ks.admin.domainId } } },
    },
  });
  const token = r.headers.get('x-subject-token');
  if (r.status !== 201 || !token) throw new Error(`admin sign-in failed: ${r.status} ${JSON.stringify(r.json)}`);
  return token;
}

interface ThrowawayUser {
  id: string;
  name: string;
  password: string;
}

/** A user in gw-test-domain WITHOUT a default project, holding `member` on both projects and the domain. */
async function createUser(admin: string, prefix: string): Promise<ThrowawayUser> {
  const name = `${prefix}-${randomBytes(4).toString('hex')}`;
  const password = remember(`password of ${prefix}`, `Pw-${randomBytes(18).toString('base64url')}`);
  const r = await keystone('POST', '/v3/users', { user: { name, password, domain_id: ks.domain.id, enabled: true } }, admin);
  if (r.status !== 201) throw new Error(`creating user ${name} failed: ${r.status} ${JSON.stringify(r.json)}`);
  const id = r.json.user.id as string;
  for (const target of [`projects/${ks.project.id}`, `projects/${ks.project2.id}`, `domains/${ks.domain.id}`]) {
    const g = await keystone('PUT', `/v3/${target}/users/${id}/roles/${ks.role.id}`, undefined, admin);
    if (g.status !== 204) throw new Error(`granting ${ks.role.name} on ${target} to ${name} failed: ${g.status}`);
  }
  return { id, name, password };
}

// ---------------------------------------------------------------- assertions

/** A successful field: remembers its value as a secret and returns it. */
function tokenOf(r: GqlResult<any>, field = 'createIamToken') {
  const token = fieldValue(r, field);
  remember(`token value from ${field}`, token.value);
  return token;
}

/** A failed field (null) with exactly one error of the given code. */
function failureOf(r: GqlResult<any>, code: string, field = 'createIamToken') {
  const err = fieldFailure(r, code, field);
  if (typeof err.extensions.receipt === 'string') remember('receipt', err.extensions.receipt);
  return err;
}

/** An error Keystone caused: service iam and Keystone's HTTP status. */
function expectUpstream(err: { extensions: Record<string, any> }, status: number) {
  expect(err.extensions.upstream).toMatchObject({ service: 'iam', status });
}

/** What every token of this file has in common. */
function expectKeystoneToken(token: any, user: { id: string; name: string }) {
  expect(typeof token.value).toBe('string');
  expect(token.value.length).toBeGreaterThan(20);
  expect(token.value).toMatch(/^gAAAAA/); // Fernet
  expect(token.user).toMatchObject({ id: user.id, name: user.name, domain: DOMAIN });
  expect(token.issuedAt).toMatch(ISO_UTC);
  expect(token.expiresAt).toMatch(ISO_UTC);
  // Keystone's [token] expiration (1 h here and by default), not Huawei's 24 h.
  expect(Math.abs(Date.parse(token.expiresAt) - Date.parse(token.issuedAt) - TTL_MS)).toBeLessThanOrEqual(1_000);
  expect(token.expired).toBe(false);
  expect(token.expiresIn).toBeGreaterThan(ks.tokenTtlSeconds - 120);
  expect(token.expiresIn).toBeLessThanOrEqual(ks.tokenTtlSeconds);
  expect(token.endpoint).toEqual({ name: ENDPOINT, isDefault: true });
}

function expectProject(token: any, project: { id: string; name: string }) {
  expect(token.project).toEqual({ id: project.id, name: project.name, domain: DOMAIN });
  expect(token.domain).toBeNull();
  expect(token.roles.map((r: { name: string }) => r.name)).toContain(ks.role.name);
}

function expectDomain(token: any) {
  expect(token.domain).toEqual(DOMAIN);
  expect(token.project).toBeNull();
  expect(token.roles.map((r: { name: string }) => r.name)).toContain(ks.role.name);
}

/** The catalog Keystone's bootstrap made: the identity service at the Keystone URL. */
function expectIdentityCatalog(token: any) {
  const identity = token.catalog.find((s: { type: string }) => s.type === 'identity');
  expect(identity, JSON.stringify(token.catalog)).toBeTruthy();
  expect(identity.name).toBe('keystone');
  expect(identity.endpoints.map((e: { interface: string }) => e.interface).sort()).toEqual(['admin', 'internal', 'public']);
  for (const e of identity.endpoints) {
    expect(e.url).toBe(`${ks.authUrl}/`);
    expect(e.region).toBe(ks.region);
    expect(e.regionId).toBe(ks.region);
    expect(e.id).toBeTruthy();
  }
}

const sorted = (a: string[]) => [...a].sort();

// ---------------------------------------------------------------- the stack

let stack: Stack;
let guardStack: Stack;
let admin: string;
/** No default project: a sign-in without scope is really unscoped. */
let plain: ThrowawayUser;
/** Only the sign-in guard test signs in as this one. */
let guarded: ThrowawayUser;
const createdUsers: string[] = [];

const create = (input: Record<string, unknown>, s: Stack = stack) => s.gql(CREATE, { input: { endpoint: ENDPOINT, ...input } }, NO_AUTH);
const rescope = (input: Record<string, unknown>) => stack.gql(RESCOPE, { input: { endpoint: ENDPOINT, ...input } }, NO_AUTH);

const byName = (u: { name: string }, password: string) => ({ userName: u.name, domainName: ks.domain.name, password });

function upstreamCallLines(s: Stack): Record<string, any>[] {
  return s.logs
    .map((l) => JSON.parse(l) as Record<string, any>)
    .filter((l) => l.msg === 'upstream call' && l.upstream === 'iam');
}

beforeAll(async () => {
  admin = remember('admin token', await adminToken());
  plain = await createUser(admin, 'gw-it-plain');
  guarded = await createUser(admin, 'gw-it-guard');
  createdUsers.push(plain.id, guarded.id);

  // Guard off here: the wrong-password tests must not lock each other out.
  stack = await startStack((c) => ({
    iam: { endpoints: [{ name: ENDPOINT, url: ks.url }, ...c.iam.endpoints] },
    iamGuard: { maxFailures: 0, windowMs: 60_000 },
  }));
  guardStack = await startStack((c) => ({
    iam: { endpoints: [{ name: ENDPOINT, url: ks.url }, ...c.iam.endpoints] },
    iamGuard: { maxFailures: 3, windowMs: 60_000 },
  }));
});

afterAll(async () => {
  try {
    // No password, passcode, TOTP secret, receipt or token used or received in any log line.
    const lines = [...(stack?.logs ?? []), ...(guardStack?.logs ?? [])];
    expect(lines.length).toBeGreaterThan(0);
    const leaks: string[] = [];
    lines.forEach((line, i) => {
      for (const [label, value] of secrets) {
        // Passcodes are 6 digits: only a standalone occurrence counts (not inside an id).
        const found = /^\d{6}$/.test(value)
          ? new RegExp(`(?<![0-9A-Za-z])${value}(?![0-9A-Za-z])`).test(line)
          : line.includes(value);
        if (found) leaks.push(`${label} in log line ${i}: ${line.slice(0, 200).replace(value, '<SECRET>')}`);
      }
    });
    expect(secrets.size).toBeGreaterThan(10);
    expect(leaks).toEqual([]);
  } finally {
    await stack?.close();
    await guardStack?.close();
    if (admin) for (const id of createdUsers) await keystone('DELETE', `/v3/users/${id}`, undefined, admin).catch(() => undefined);
  }
});

// ---------------------------------------------------------------- tests

describe('gateway → real Keystone: password tokens', () => {
  it('lists `keystone` as the default endpoint (no URL)', async () => {
    const r = await stack.gql('{ iamEndpoints { name isDefault } }', {}, NO_AUTH);
    expect(r.errors).toBeUndefined();
    expect(r.data.iamEndpoints[0]).toEqual({ name: ENDPOINT, isDefault: true });
    expect(JSON.stringify(r.data)).not.toContain(ks.url);
  });

  it('unscoped (user without a default project), by userName + domainName: no project, domain, roles or catalog', async () => {
    const token = tokenOf(await create({ password: byName(plain, plain.password) }));
    expectKeystoneToken(token, plain);
    expect(token.methods).toEqual(['password']);
    expect(token.project).toBeNull();
    expect(token.domain).toBeNull();
    expect(token.roles).toEqual([]);
    expect(token.catalog).toEqual([]);
    expect(token.mfaAuthenticatedAt).toBeNull();
    expect(token.user.passwordExpiresAt).toBeNull();
  });

  it('without a scope, a user WITH a default project gets a token scoped to it (Keystone\'s default)', async () => {
    const token = tokenOf(await create({ password: byName(PASSWORD_USER, PASSWORD_USER.password), includeCatalog: false }));
    expectKeystoneToken(token, PASSWORD_USER);
    expectProject(token, ks.project);
  });

  it('scope { unscoped: true } gives the same user a really unscoped token', async () => {
    const token = tokenOf(await create({ password: byName(PASSWORD_USER, PASSWORD_USER.password), scope: { unscoped: true } }));
    expectKeystoneToken(token, PASSWORD_USER);
    expect(token.project).toBeNull();
    expect(token.domain).toBeNull();
    expect(token.roles).toEqual([]);
    expect(token.catalog).toEqual([]);
  });

  it('project-scoped by name + domain name, with the catalog: the identity service at the Keystone URL', async () => {
    const token = tokenOf(
      await create({
        password: byName(PASSWORD_USER, PASSWORD_USER.password),
        scope: { project: { name: ks.project.name, domain: { name: ks.domain.name } } },
      }),
    );
    expectKeystoneToken(token, PASSWORD_USER);
    expect(token.methods).toEqual(['password']);
    expectProject(token, ks.project);
    expectIdentityCatalog(token);
  });

  it('project-scoped by id, by userId', async () => {
    const token = tokenOf(
      await create({ password: { userId: PASSWORD_USER.id, password: PASSWORD_USER.password }, scope: { project: { id: ks.project2.id } } }),
    );
    expectKeystoneToken(token, PASSWORD_USER);
    expectProject(token, ks.project2);
    expectIdentityCatalog(token);
  });

  it('project-scoped by name + domain id, by userName + domainId', async () => {
    const token = tokenOf(
      await create({
        password: { userName: PASSWORD_USER.name, domainId: ks.domain.id, password: PASSWORD_USER.password },
        scope: { project: { name: ks.project2.name, domain: { id: ks.domain.id } } },
      }),
    );
    expectKeystoneToken(token, PASSWORD_USER);
    expectProject(token, ks.project2);
  });

  it('includeCatalog: false → catalog [] (Keystone honours ?nocatalog)', async () => {
    const token = tokenOf(
      await create({
        password: byName(PASSWORD_USER, PASSWORD_USER.password),
        scope: { project: { id: ks.project.id } },
        includeCatalog: false,
      }),
    );
    expectProject(token, ks.project);
    expect(token.catalog).toEqual([]);
  });

  it('domain-scoped by id', async () => {
    const token = tokenOf(await create({ password: { userId: PASSWORD_USER.id, password: PASSWORD_USER.password }, scope: { domain: { id: ks.domain.id } } }));
    expectKeystoneToken(token, PASSWORD_USER);
    expectDomain(token);
  });

  it('domain-scoped by name, without the catalog', async () => {
    const token = tokenOf(
      await create({ password: byName(PASSWORD_USER, PASSWORD_USER.password), scope: { domain: { name: ks.domain.name } }, includeCatalog: false }),
    );
    expectKeystoneToken(token, PASSWORD_USER);
    expectDomain(token);
    expect(token.catalog).toEqual([]);
  });

  it('every sign-in gets its own token value', async () => {
    const input = { password: byName(PASSWORD_USER, PASSWORD_USER.password), includeCatalog: false };
    const [a, b] = await Promise.all([create(input), create(input)]);
    expect(tokenOf(a).value).not.toBe(tokenOf(b).value);
  });

  it('a wrong password is UNAUTHENTICATED with upstream {service iam, status 401}', async () => {
    const err = failureOf(await create({ password: byName(PASSWORD_USER, wrongPassword('gw-user')) }), 'UNAUTHENTICATED');
    expectUpstream(err, 401);
  });

  it('an unknown user is UNAUTHENTICATED (Keystone answers the same generic 401)', async () => {
    const err = failureOf(await create({ password: { userName: 'gw-no-such-user', domainName: ks.domain.name, password: wrongPassword('unknown') } }), 'UNAUTHENTICATED');
    expectUpstream(err, 401);
  });

  it('an unknown project in the password method is UNAUTHENTICATED (Keystone answers its generic 401, not 404)', async () => {
    const err = failureOf(
      await create({ password: byName(PASSWORD_USER, PASSWORD_USER.password), scope: { project: { id: 'no-such-project-0000' } } }),
      'UNAUTHENTICATED',
    );
    expectUpstream(err, 401);
  });
});

describe('gateway → real Keystone: MFA (password + TOTP)', () => {
  it('password + the current passcode → a token with methods password and totp (any order)', async () => {
    const token = tokenOf(
      await create({
        password: byName(MFA_USER, MFA_USER.password),
        totp: { userId: MFA_USER.id, passcode: passcode() },
        scope: { project: { id: ks.project.id } },
      }),
    );
    expectKeystoneToken(token, MFA_USER);
    expect(sorted(token.methods)).toEqual(['password', 'totp']);
    expectProject(token, ks.project);
    expectIdentityCatalog(token);
  });

  it('password + totp, by userId, domain-scoped', async () => {
    const token = tokenOf(
      await create({
        password: { userId: MFA_USER.id, password: MFA_USER.password },
        totp: { userId: MFA_USER.id, passcode: passcode() },
        scope: { domain: { name: ks.domain.name } },
      }),
    );
    expect(sorted(token.methods)).toEqual(['password', 'totp']);
    expectDomain(token);
  });

  it('the right password without totp is MFA_REQUIRED with requiredMethods [password, totp] and Keystone\'s receipt', async () => {
    const err = failureOf(await create({ password: byName(MFA_USER, MFA_USER.password) }), 'MFA_REQUIRED');
    expectUpstream(err, 401);
    const required = err.extensions.requiredMethods as string[][];
    expect(required).toHaveLength(1);
    expect(sorted(required[0]!)).toEqual(['password', 'totp']);
    expect(typeof err.extensions.receipt).toBe('string');
    expect(err.extensions.receipt).toMatch(/^gAAAAA/); // Fernet, like Keystone's tokens
    expect(err.message).not.toContain(err.extensions.receipt);
  });

  it('MFA_REQUIRED, then receipt + totp (no password) → a token with methods password and totp', async () => {
    const first = failureOf(await create({ password: byName(MFA_USER, MFA_USER.password) }), 'MFA_REQUIRED');
    const receipt = first.extensions.receipt as string;
    expect(receipt).toBeTruthy();
    const token = tokenOf(
      await create({ receipt, totp: { userId: MFA_USER.id, passcode: passcode() }, scope: { project: { name: ks.project2.name, domain: { id: ks.domain.id } } } }),
    );
    expectKeystoneToken(token, MFA_USER);
    expect(sorted(token.methods)).toEqual(['password', 'totp']);
    expectProject(token, ks.project2);
  });

  it('a garbage receipt + totp is UNAUTHENTICATED, and Keystone\'s message quoting the receipt is redacted', async () => {
    const receipt = remember('garbage receipt', `gAAAAAB${randomBytes(24).toString('base64url')}`);
    const err = failureOf(await create({ receipt, totp: { userId: MFA_USER.id, passcode: passcode() } }), 'UNAUTHENTICATED');
    expectUpstream(err, 401);
    expect(err.message).not.toContain(receipt);
    expect(JSON.stringify(err)).not.toContain(receipt);
  });

  it('a wrong passcode is UNAUTHENTICATED (generic 401, no receipt)', async () => {
    const err = failureOf(
      await create({ password: byName(MFA_USER, MFA_USER.password), totp: { userId: MFA_USER.id, passcode: wrongPasscode() } }),
      'UNAUTHENTICATED',
    );
    expectUpstream(err, 401);
    expect(err.extensions.receipt).toBeUndefined();
  });

  it('a wrong password with the right passcode is UNAUTHENTICATED', async () => {
    const err = failureOf(
      await create({ password: byName(MFA_USER, wrongPassword('gw-mfa-user')), totp: { userId: MFA_USER.id, passcode: passcode() } }),
      'UNAUTHENTICATED',
    );
    expectUpstream(err, 401);
  });

  it('a wrong password without totp is UNAUTHENTICATED, not MFA_REQUIRED (Keystone issues no receipt)', async () => {
    const err = failureOf(await create({ password: byName(MFA_USER, wrongPassword('gw-mfa-user, no totp')) }), 'UNAUTHENTICATED');
    expectUpstream(err, 401);
    expect(err.extensions.receipt).toBeUndefined();
  });
});

describe('gateway → real Keystone: createScopedIamToken (rescoping)', () => {
  async function unscoped() {
    const token = tokenOf(await create({ password: byName(plain, plain.password), includeCatalog: false }));
    expect(token.project).toBeNull();
    expect(token.domain).toBeNull();
    return token;
  }

  it('an unscoped token to a project by id: methods token + password, same user, same expiry, a new value', async () => {
    const source = await unscoped();
    const token = tokenOf(await rescope({ token: source.value, scope: { project: { id: ks.project.id } } }), 'createScopedIamToken');
    expectKeystoneToken(token, plain);
    expect(sorted(token.methods)).toEqual(['password', 'token']);
    expectProject(token, ks.project);
    expectIdentityCatalog(token);
    expect(token.value).not.toBe(source.value);
    expect(token.expiresAt).toBe(source.expiresAt); // Keystone keeps the original expiry
  });

  it('an unscoped token to a project by name + domain name, without the catalog', async () => {
    const source = await unscoped();
    const token = tokenOf(
      await rescope({ token: source.value, scope: { project: { name: ks.project2.name, domain: { name: ks.domain.name } } }, includeCatalog: false }),
      'createScopedIamToken',
    );
    expectProject(token, ks.project2);
    expect(token.catalog).toEqual([]);
  });

  it('an unscoped token to a domain by id and by name', async () => {
    const source = await unscoped();
    for (const domain of [{ id: ks.domain.id }, { name: ks.domain.name }]) {
      const token = tokenOf(await rescope({ token: source.value, scope: { domain } }), 'createScopedIamToken');
      expectKeystoneToken(token, plain);
      expect(sorted(token.methods)).toEqual(['password', 'token']);
      expectDomain(token);
    }
  });

  it('an MFA token keeps its methods when rescoped', async () => {
    const source = tokenOf(
      await create({ password: byName(MFA_USER, MFA_USER.password), totp: { userId: MFA_USER.id, passcode: passcode() }, includeCatalog: false }),
    );
    const token = tokenOf(await rescope({ token: source.value, scope: { project: { id: ks.project2.id } } }), 'createScopedIamToken');
    expect(sorted(token.methods)).toEqual(['password', 'token', 'totp']);
    expectProject(token, ks.project2);
  });

  it('a project-scoped token (default project) rescoped to another project', async () => {
    const source = tokenOf(await create({ password: byName(PASSWORD_USER, PASSWORD_USER.password), includeCatalog: false }));
    expectProject(source, ks.project);
    const token = tokenOf(await rescope({ token: source.value, scope: { project: { id: ks.project2.id } }, includeCatalog: false }), 'createScopedIamToken');
    expectProject(token, ks.project2);
  });

  // Keystone 22 answers a garbage token with 404 "Could not recognize Fernet token" and a revoked
  // one with 404 "Failed to validate token"; the gateway only maps "Could not find token" to
  // UNAUTHENTICATED (src/upstreams/iam/client.ts iamError) and reports these as NOT_FOUND.
  it('a garbage token is UNAUTHENTICATED (Keystone answers 404 "Could not recognize Fernet token")', async () => {
    const garbage = remember('garbage token', `gAAAAAB${randomBytes(90).toString('base64url')}`);
    const err = failureOf(await rescope({ token: garbage, scope: { project: { id: ks.project.id } } }), 'UNAUTHENTICATED', 'createScopedIamToken');
    expectUpstream(err, 404);
    expect(JSON.stringify(err)).not.toContain(garbage);
  });

  it('a revoked token is UNAUTHENTICATED (Keystone answers 404 "Failed to validate token")', async () => {
    const source = await unscoped();
    const revoke = await keystone('DELETE', '/v3/auth/tokens', undefined, admin, { 'x-subject-token': source.value });
    expect(revoke.status).toBe(204);
    const err = failureOf(await rescope({ token: source.value, scope: { project: { id: ks.project.id } } }), 'UNAUTHENTICATED', 'createScopedIamToken');
    expectUpstream(err, 404);
    expect(JSON.stringify(err)).not.toContain(source.value);
  });

  it('an unknown project is UNAUTHENTICATED (Keystone answers its generic 401, not 404)', async () => {
    const source = await unscoped();
    const err = failureOf(
      await rescope({ token: source.value, scope: { project: { id: 'no-such-project-0000' } } }),
      'UNAUTHENTICATED',
      'createScopedIamToken',
    );
    expectUpstream(err, 401);
  });

  it('an unknown domain name is UNAUTHENTICATED (generic 401)', async () => {
    const source = await unscoped();
    const err = failureOf(await rescope({ token: source.value, scope: { domain: { name: 'gw-no-such-domain' } } }), 'UNAUTHENTICATED', 'createScopedIamToken');
    expectUpstream(err, 401);
  });
});

describe('gateway → real Keystone: upstream request ids', () => {
  it("Keystone sends its request id as x-openstack-request-id (raw), not X-Request-Id", async () => {
    const r = await keystone('POST', '/v3/auth/tokens', {
      auth: { identity: { methods: ['password'], password: { user: { id: PASSWORD_USER.id, password: wrongPassword('raw') } } } },
    });
    expect(r.status).toBe(401);
    expect(r.headers.get('x-openstack-request-id')).toMatch(KEYSTONE_REQUEST_ID);
    expect(r.headers.get('x-request-id')).toBeNull();
  });

  it("errors carry Keystone's x-openstack-request-id as extensions.upstream.requestId, and the upstream-call log line has it", async () => {
    const err = failureOf(await create({ password: byName(PASSWORD_USER, wrongPassword('request id')) }), 'UNAUTHENTICATED');
    expectUpstream(err, 401);
    expect.soft(err.extensions.upstream.requestId, 'src/upstreams/http.ts reads only x-request-id / x-acs-request-id').toMatch(KEYSTONE_REQUEST_ID);
    const last = upstreamCallLines(stack).at(-1);
    expect(last).toMatchObject({ operation: 'createToken', status: 401 });
    expect.soft(last?.upstreamRequestId, 'upstream call log line').toMatch(KEYSTONE_REQUEST_ID);
  });
});

describe('gateway → real Keystone: the sign-in guard (maxFailures 3 in 60 s)', () => {
  it('3 wrong passwords reach Keystone (401 each); the 4th attempt, and even the right password, is RATE_LIMITED SIGN_IN_GUARD with no Keystone call', async () => {
    // A successful sign-in first: the guard then knows that the name and the id are one user, who
    // gets the whole budget (a user it has never seen gets half of it per way of naming).
    expect((await create({ password: byName(guarded, guarded.password) }, guardStack)).errors).toBeUndefined();
    const callsBefore = upstreamCallLines(guardStack).length;
    for (let i = 1; i <= 3; i++) {
      const err = failureOf(await create({ password: byName(guarded, wrongPassword(`guard ${i}`)) }, guardStack), 'UNAUTHENTICATED');
      expectUpstream(err, 401);
    }
    expect(upstreamCallLines(guardStack).length - callsBefore).toBe(3);

    for (const password of [wrongPassword('guard 4'), guarded.password]) {
      const err = failureOf(await create({ password: byName(guarded, password) }, guardStack), 'RATE_LIMITED');
      expect(err.extensions.reason).toBe('SIGN_IN_GUARD');
      expect(err.extensions.retryAfterSeconds).toBeGreaterThanOrEqual(1);
      expect(err.extensions.retryAfterSeconds).toBeLessThanOrEqual(60);
      expect(err.extensions.upstream).toBeUndefined();
    }
    expect(upstreamCallLines(guardStack).length - callsBefore).toBe(3);

    // Keystone itself never locked the user: the right password works there.
    const raw = await keystone('POST', '/v3/auth/tokens?nocatalog', {
      auth: { identity: { methods: ['password'], password: { user: { id: guarded.id, password: guarded.password } } } },
    });
    expect(raw.status).toBe(201);
    remember('raw token', raw.headers.get('x-subject-token'));
  });

  it('the guard is per user: another user still signs in through the same gateway', async () => {
    const token = tokenOf(await create({ password: byName(PASSWORD_USER, PASSWORD_USER.password), includeCatalog: false }, guardStack));
    expectKeystoneToken(token, PASSWORD_USER);
  });
});
