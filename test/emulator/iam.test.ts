// The IAM emulator over real HTTP: POST /v3/auth/tokens as Huawei / Orange Business Cloud IAM answers it.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { authenticator } from 'otplib';
import { startEmulator, type Emulator } from '../../src/emulator/index.ts';
import {
  DEMO_IAM_CATALOG,
  DEMO_IAM_DOMAIN,
  DEMO_IAM_FEDERATED,
  DEMO_IAM_OTHER_DOMAIN,
  DEMO_IAM_PROJECTS,
  DEMO_IAM_USERS,
  IAM_LOCKOUT,
  IAM_TOKEN_LIFETIME_MS,
} from '../../src/emulator/fixtures.ts';

const USER = DEMO_IAM_USERS.password;
const MFA = DEMO_IAM_USERS.mfa;
const PROJECT = DEMO_IAM_PROJECTS.euWest0;
const STEP_MS = 30_000;
const ISO_MICROS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/;
const TOKEN_VALUE = /^MII[A-Za-z0-9_-]{64}$/;

const UNAUTHORIZED = {
  error: { code: 401, title: 'Unauthorized', message: 'The request you have made requires authentication.' },
};
const MFA_REQUIRED = {
  error: {
    code: 401,
    title: 'Unauthorized',
    message:
      'MFA verification is required: use methods ["password","totp"] with the passcode of the user\'s virtual MFA device.',
    required_auth_methods: [['password', 'totp']],
  },
};
const TOKEN_NOT_FOUND = { error: { code: 404, title: 'Not Found', message: 'Could not find token.' } };
const LOCKED_MESSAGE = /^The user is locked: too many failed sign-ins\. Try again in (\d+) seconds\.$/;

let emulator: Emulator;

beforeAll(async () => {
  emulator = await startEmulator({ port: 0 });
});
afterAll(async () => {
  await emulator.close();
});
beforeEach(() => {
  emulator.reset();
});

// ---------------------------------------------------------------- helpers

interface Answer {
  status: number;
  headers: Headers;
  text: string;
  /** Parsed JSON; asserted field by field, so left untyped. */
  body: any;
}

/** Secrets that must never come back in any answer. */
const SECRETS = Object.values(DEMO_IAM_USERS).map((u) => u.password);

async function createToken(payload: unknown, query = ''): Promise<Answer> {
  const res = await fetch(`${emulator.url}/v3/auth/tokens${query}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json;charset=utf8' },
    body: typeof payload === 'string' ? payload : JSON.stringify(payload),
  });
  const text = await res.text();
  // Every answer, success or error, is checked for leaked secrets and carries a request id.
  for (const secret of [...SECRETS, ...submittedSecrets(payload)]) expect(text).not.toContain(secret);
  expect(res.headers.get('x-request-id')).toMatch(/^[0-9A-F-]{36}$/);
  return { status: res.status, headers: res.headers, text, body: text ? JSON.parse(text) : undefined };
}

function submittedSecrets(payload: unknown): string[] {
  if (typeof payload !== 'object' || payload === null) return [];
  const identity = (payload as { auth?: { identity?: Record<string, any> } }).auth?.identity;
  const password = identity?.password?.user?.password;
  return typeof password === 'string' && password.length >= 6 ? [password] : [];
}

type UserRef = Record<string, unknown>;
type ScopeRef = Record<string, unknown>;

const byName = (u: typeof USER | typeof MFA, password: string = u.password): UserRef => ({
  name: u.name,
  password,
  domain: { name: u.domain.name },
});

function passwordAuth(user: UserRef, scope?: ScopeRef, totp?: { id: string; passcode: string }) {
  return {
    auth: {
      identity: {
        methods: totp ? ['password', 'totp'] : ['password'],
        password: { user },
        ...(totp ? { totp: { user: totp } } : {}),
      },
      ...(scope ? { scope } : {}),
    },
  };
}

const tokenAuth = (id: string, scope?: ScopeRef) => ({
  auth: { identity: { methods: ['token'], token: { id } }, ...(scope ? { scope } : {}) },
});

const passcodeAt = (epochMs: number) => authenticator.clone({ epoch: epochMs }).generate(MFA.totpSecret);

/** Moves the emulator clock to the middle of a TOTP step, so no test races a step boundary. */
function toMidStep(): number {
  emulator.advanceClock(STEP_MS + STEP_MS / 2 - (emulator.state.now() % STEP_MS));
  return emulator.state.now();
}

/** A passcode valid in none of the steps the emulator accepts now. */
function wrongPasscode(): string {
  const now = emulator.state.now();
  const valid = new Set([-1, 0, 1].map((k) => passcodeAt(now + k * STEP_MS)));
  return ['000000', '111111', '222222', '333333'].find((c) => !valid.has(c))!;
}

const at = (iso: string) => Date.parse(iso);

async function unscopedPasswordToken(): Promise<Answer> {
  const answer = await createToken(passwordAuth(byName(USER)));
  expect(answer.status).toBe(201);
  return answer;
}

// ---------------------------------------------------------------- password

describe('method password', () => {
  it('signs in by user name and domain name: 201, X-Subject-Token, an unscoped token', async () => {
    const { status, headers, body } = await createToken(passwordAuth(byName(USER)));
    expect(status).toBe(201);
    expect(headers.get('x-subject-token')).toMatch(TOKEN_VALUE);
    expect(headers.get('content-type')).toMatch(/^application\/json/);
    expect(body).toEqual({
      token: {
        methods: ['password'],
        expires_at: expect.stringMatching(ISO_MICROS),
        issued_at: expect.stringMatching(ISO_MICROS),
        user: { domain: DEMO_IAM_DOMAIN, id: USER.id, name: USER.name, password_expires_at: '' },
        catalog: [],
        roles: [],
      },
    });
  });

  it('signs in by user name and domain id', async () => {
    const { status, body } = await createToken(
      passwordAuth({ name: USER.name, password: USER.password, domain: { id: DEMO_IAM_DOMAIN.id } }),
    );
    expect(status).toBe(201);
    expect(body.token.user.id).toBe(USER.id);
  });

  it('signs in by user id alone', async () => {
    const { status, body } = await createToken(passwordAuth({ id: USER.id, password: USER.password }));
    expect(status).toBe(201);
    expect(body.token.user).toEqual({ domain: DEMO_IAM_DOMAIN, id: USER.id, name: USER.name, password_expires_at: '' });
  });

  it('issues 24-hour tokens stamped with the emulator clock, in ISO with microseconds', async () => {
    emulator.advanceClock(3 * 3_600_000);
    const before = Math.floor(emulator.state.now() / 1000) * 1000;
    const { body } = await createToken(passwordAuth(byName(USER)));
    const after = emulator.state.now();
    const { issued_at, expires_at } = body.token;
    expect(issued_at).toMatch(ISO_MICROS);
    expect(expires_at).toMatch(ISO_MICROS);
    expect(at(issued_at)).toBeGreaterThanOrEqual(before);
    expect(at(issued_at)).toBeLessThanOrEqual(after);
    expect(at(expires_at) - at(issued_at)).toBe(IAM_TOKEN_LIFETIME_MS);
  });

  it('issues a new opaque token value every time', async () => {
    const a = await unscopedPasswordToken();
    const b = await unscopedPasswordToken();
    expect(a.headers.get('x-subject-token')).not.toBe(b.headers.get('x-subject-token'));
  });

  it('shows the password expiry of a user whose password expires', async () => {
    const passcode = passcodeAt(toMidStep());
    const { body } = await createToken(passwordAuth(byName(MFA), undefined, { id: MFA.id, passcode }));
    expect(body.token.user.password_expires_at).toBe(MFA.passwordExpiresAt);
  });

  it.each([
    ['a wrong password', byName(USER, 'Wrong-Passw0rd!')],
    ['an unknown user name', { name: 'nobody', password: USER.password, domain: { name: DEMO_IAM_DOMAIN.name } }],
    ['an unknown user id', { id: 'ffffffffffffffffffffffffffffffff', password: USER.password }],
    ['an unknown domain', { name: USER.name, password: USER.password, domain: { name: 'no-such-domain' } }],
    ['the user name in another domain', { name: USER.name, password: USER.password, domain: DEMO_IAM_OTHER_DOMAIN }],
  ])('answers %s with the one generic 401', async (_, user) => {
    const { status, body } = await createToken(passwordAuth(user));
    expect(status).toBe(401);
    expect(body).toEqual(UNAUTHORIZED);
  });
});

// ---------------------------------------------------------------- scope

describe('scope', () => {
  it('scopes to a project by id, with the catalog and the roles', async () => {
    const { status, body } = await createToken(passwordAuth(byName(USER), { project: { id: PROJECT.id } }));
    expect(status).toBe(201);
    expect(body.token.project).toEqual({ id: PROJECT.id, name: PROJECT.name, domain: DEMO_IAM_DOMAIN });
    expect(body.token).not.toHaveProperty('domain');
    expect(body.token.catalog).toEqual(DEMO_IAM_CATALOG);
    expect(body.token.roles).toEqual(USER.roles);
  });

  it.each([
    ['domain name', { name: DEMO_IAM_DOMAIN.name }],
    ['domain id', { id: DEMO_IAM_DOMAIN.id }],
  ])('scopes to a project by name and %s', async (_, domain) => {
    const scope = { project: { name: DEMO_IAM_PROJECTS.apSoutheast1.name, domain } };
    const { status, body } = await createToken(passwordAuth(byName(USER), scope));
    expect(status).toBe(201);
    expect(body.token.project.id).toBe(DEMO_IAM_PROJECTS.apSoutheast1.id);
  });

  it.each([
    ['id', { id: DEMO_IAM_DOMAIN.id }],
    ['name', { name: DEMO_IAM_DOMAIN.name }],
  ])('scopes to a domain by %s', async (_, domain) => {
    const { status, body } = await createToken(passwordAuth(byName(USER), { domain }));
    expect(status).toBe(201);
    expect(body.token.domain).toEqual(DEMO_IAM_DOMAIN);
    expect(body.token).not.toHaveProperty('project');
    expect(body.token.catalog).toEqual(DEMO_IAM_CATALOG);
    expect(body.token.roles).toEqual(USER.roles);
  });

  it.each(['?nocatalog', '?nocatalog=false', '?foo=1&nocatalog='])('leaves out the catalog with %s', async (query) => {
    const { status, body } = await createToken(passwordAuth(byName(USER), { project: { id: PROJECT.id } }), query);
    expect(status).toBe(201);
    expect(body.token).not.toHaveProperty('catalog');
    expect(body.token.roles).toEqual(USER.roles);
  });

  it.each([
    ['project id', { project: { id: 'nope' } }, 'Could not find project: nope.'],
    ['project name', { project: { name: 'mars-1', domain: { name: DEMO_IAM_DOMAIN.name } } }, 'Could not find project: mars-1.'],
    ['project domain', { project: { name: PROJECT.name, domain: { name: 'atlantis' } } }, 'Could not find domain: atlantis.'],
    ['domain id', { domain: { id: 'nope' } }, 'Could not find domain: nope.'],
    ['domain name', { domain: { name: 'atlantis' } }, 'Could not find domain: atlantis.'],
  ])('answers an unknown %s with 404', async (_, scope, message) => {
    const { status, body } = await createToken(passwordAuth(byName(USER), scope));
    expect(status).toBe(404);
    expect(body).toEqual({ error: { code: 404, title: 'Not Found', message } });
  });

  it('does not reveal projects to a caller with a wrong password', async () => {
    const { status, body } = await createToken(passwordAuth(byName(USER, 'Wrong-Passw0rd!'), { project: { id: 'nope' } }));
    expect(status).toBe(401);
    expect(body).toEqual(UNAUTHORIZED);
  });

  it("refuses another account's domain with the generic 401", async () => {
    const { status, body } = await createToken(passwordAuth(byName(USER), { domain: { id: DEMO_IAM_OTHER_DOMAIN.id } }));
    expect(status).toBe(401);
    expect(body).toEqual(UNAUTHORIZED);
  });
});

// ---------------------------------------------------------------- virtual MFA

describe('methods password + totp', () => {
  it('refuses a password-only sign-in of an MFA user with a distinct 401 naming the methods', async () => {
    const { status, headers, body } = await createToken(passwordAuth(byName(MFA)));
    expect(status).toBe(401);
    expect(headers.get('x-subject-token')).toBeNull();
    expect(body).toEqual(MFA_REQUIRED);
  });

  it('answers a wrong password of an MFA user with the generic 401, not revealing MFA', async () => {
    const { body } = await createToken(passwordAuth(byName(MFA, 'Wrong-Passw0rd!')));
    expect(body).toEqual(UNAUTHORIZED);
  });

  it('signs in with the current passcode: methods [password, totp] and mfa_authn_at', async () => {
    const passcode = passcodeAt(toMidStep());
    const { status, headers, body } = await createToken(
      passwordAuth(byName(MFA), { domain: { name: DEMO_IAM_DOMAIN.name } }, { id: MFA.id, passcode }),
    );
    expect(status).toBe(201);
    expect(headers.get('x-subject-token')).toMatch(TOKEN_VALUE);
    expect(body.token.methods).toEqual(['password', 'totp']);
    expect(body.token.mfa_authn_at).toMatch(ISO_MICROS);
    expect(body.token.mfa_authn_at).toBe(body.token.issued_at);
    expect(body.token.user.id).toBe(MFA.id);
    expect(body.token.roles).toEqual(MFA.roles);
  });

  it('accepts the passcode of the previous 30 s step', async () => {
    const passcode = passcodeAt(toMidStep());
    emulator.advanceClock(STEP_MS);
    const { status } = await createToken(passwordAuth(byName(MFA), undefined, { id: MFA.id, passcode }));
    expect(status).toBe(201);
  });

  it('refuses the passcode of three steps ago', async () => {
    const passcode = passcodeAt(toMidStep() - 3 * STEP_MS);
    const { status, body } = await createToken(passwordAuth(byName(MFA), undefined, { id: MFA.id, passcode }));
    expect(status).toBe(401);
    expect(body).toEqual(UNAUTHORIZED);
  });

  it('checks passcodes at the emulator clock, not the wall clock', async () => {
    toMidStep();
    emulator.advanceClock(10 * 60_000);
    const wallClockPasscode = passcodeAt(Date.now());
    const emulatorPasscode = passcodeAt(emulator.state.now());
    const wall = await createToken(passwordAuth(byName(MFA), undefined, { id: MFA.id, passcode: wallClockPasscode }));
    expect(wall.status).toBe(401);
    const emu = await createToken(passwordAuth(byName(MFA), undefined, { id: MFA.id, passcode: emulatorPasscode }));
    expect(emu.status).toBe(201);
  });

  it.each([
    ['a wrong passcode', MFA.id, wrongPasscode],
    ['a non-numeric passcode', MFA.id, () => 'abcdef'],
    ["another user's id in totp", USER.id, () => passcodeAt(emulator.state.now())],
  ])('answers %s with the generic 401', async (_, totpUserId, passcode) => {
    toMidStep();
    const totp = { id: totpUserId, passcode: passcode() };
    const { status, body } = await createToken(passwordAuth(byName(MFA), undefined, totp));
    expect(status).toBe(401);
    expect(body).toEqual(UNAUTHORIZED);
  });

  it('answers totp for a user without an MFA device with the generic 401', async () => {
    const { status, body } = await createToken(passwordAuth(byName(USER), undefined, { id: USER.id, passcode: '123456' }));
    expect(status).toBe(401);
    expect(body).toEqual(UNAUTHORIZED);
  });

  it('accepts the methods in either order', async () => {
    const passcode = passcodeAt(toMidStep());
    const payload = passwordAuth(byName(MFA), undefined, { id: MFA.id, passcode });
    payload.auth.identity.methods = ['totp', 'password'];
    expect((await createToken(payload)).status).toBe(201);
  });
});

// ---------------------------------------------------------------- method token

describe('method token (rescoping)', () => {
  it('rescopes the federated token to a project, keeping OS-FEDERATION', async () => {
    const { status, headers, body } = await createToken(tokenAuth(DEMO_IAM_FEDERATED.token, { project: { id: PROJECT.id } }));
    expect(status).toBe(201);
    const value = headers.get('x-subject-token');
    expect(value).toMatch(TOKEN_VALUE);
    expect(value).not.toBe(DEMO_IAM_FEDERATED.token);
    expect(body.token).toEqual({
      methods: ['token'],
      expires_at: expect.stringMatching(ISO_MICROS),
      issued_at: expect.stringMatching(ISO_MICROS),
      user: {
        'OS-FEDERATION': DEMO_IAM_FEDERATED.federation,
        domain: DEMO_IAM_DOMAIN,
        id: DEMO_IAM_FEDERATED.user.id,
        name: DEMO_IAM_FEDERATED.user.name,
        password_expires_at: '',
      },
      project: { id: PROJECT.id, name: PROJECT.name, domain: DEMO_IAM_DOMAIN },
      catalog: DEMO_IAM_CATALOG,
      roles: DEMO_IAM_FEDERATED.roles,
    });
  });

  it('rescopes the federated token to a domain', async () => {
    const { status, body } = await createToken(
      tokenAuth(DEMO_IAM_FEDERATED.token, { domain: { name: DEMO_IAM_DOMAIN.name } }),
      '?nocatalog',
    );
    expect(status).toBe(201);
    expect(body.token.domain).toEqual(DEMO_IAM_DOMAIN);
    expect(body.token.user['OS-FEDERATION']).toEqual(DEMO_IAM_FEDERATED.federation);
    expect(body.token.methods).toEqual(['token']);
    expect(body.token).not.toHaveProperty('catalog');
  });

  it('rescopes an unscoped password token, keeping its expiry', async () => {
    const unscoped = await unscopedPasswordToken();
    emulator.advanceClock(60 * 60_000);
    const scope = { project: { name: PROJECT.name, domain: { id: DEMO_IAM_DOMAIN.id } } };
    const { status, body } = await createToken(tokenAuth(unscoped.headers.get('x-subject-token')!, scope));
    expect(status).toBe(201);
    expect(body.token.methods).toEqual(['token']);
    expect(body.token.user).toEqual(unscoped.body.token.user);
    expect(body.token.project.id).toBe(PROJECT.id);
    expect(body.token.roles).toEqual(USER.roles);
    expect(body.token.expires_at).toBe(unscoped.body.token.expires_at);
    expect(at(body.token.issued_at) - at(unscoped.body.token.issued_at)).toBeGreaterThanOrEqual(60 * 60_000);
  });

  it('rescopes a rescoped token again', async () => {
    const first = await createToken(tokenAuth(DEMO_IAM_FEDERATED.token, { domain: { id: DEMO_IAM_DOMAIN.id } }));
    const second = await createToken(tokenAuth(first.headers.get('x-subject-token')!, { project: { id: PROJECT.id } }));
    expect(second.status).toBe(201);
    expect(second.body.token.project.id).toBe(PROJECT.id);
  });

  it('keeps mfa_authn_at when rescoping an MFA token', async () => {
    const passcode = passcodeAt(toMidStep());
    const mfa = await createToken(passwordAuth(byName(MFA), undefined, { id: MFA.id, passcode }));
    const { body } = await createToken(tokenAuth(mfa.headers.get('x-subject-token')!, { project: { id: PROJECT.id } }));
    expect(body.token.mfa_authn_at).toBe(mfa.body.token.mfa_authn_at);
  });

  it.each([
    ['a garbage token', 'garbage'],
    ['an unknown MII token', `MII${'A'.repeat(64)}`],
  ])('answers %s with 404 without quoting it', async (_, id) => {
    const { status, text, body } = await createToken(tokenAuth(id, { project: { id: PROJECT.id } }));
    expect(status).toBe(404);
    expect(body).toEqual(TOKEN_NOT_FOUND);
    expect(text).not.toContain(id);
  });

  it('answers an expired token like an unknown one', async () => {
    const unscoped = await unscopedPasswordToken();
    emulator.advanceClock(IAM_TOKEN_LIFETIME_MS + 1000);
    const { status, body } = await createToken(
      tokenAuth(unscoped.headers.get('x-subject-token')!, { project: { id: PROJECT.id } }),
    );
    expect(status).toBe(404);
    expect(body).toEqual(TOKEN_NOT_FOUND);
  });

  it('forgets issued tokens on reset', async () => {
    const unscoped = await unscopedPasswordToken();
    emulator.reset();
    const { status } = await createToken(tokenAuth(unscoped.headers.get('x-subject-token')!, { project: { id: PROJECT.id } }));
    expect(status).toBe(404);
  });

  it('requires a scope', async () => {
    const { status, body } = await createToken(tokenAuth(DEMO_IAM_FEDERATED.token));
    expect(status).toBe(400);
    expect(body.error).toMatchObject({ code: 400, title: 'Bad Request', message: expect.stringMatching(/^Expecting to find scope in auth\./) });
  });

  it("refuses another account's domain with the generic 401", async () => {
    const { status, body } = await createToken(tokenAuth(DEMO_IAM_FEDERATED.token, { domain: { name: DEMO_IAM_OTHER_DOMAIN.name } }));
    expect(status).toBe(401);
    expect(body).toEqual(UNAUTHORIZED);
  });
});

// ---------------------------------------------------------------- malformed requests

describe('malformed requests', () => {
  const user = byName(USER);
  it.each<[string, unknown]>([
    ['a body that is not JSON', '{"auth": '],
    ['an empty body', ''],
    ['a JSON array', []],
    ['no auth', { identity: { methods: ['password'], password: { user } } }],
    ['no identity', { auth: { scope: { domain: { id: DEMO_IAM_DOMAIN.id } } } }],
    ['no methods', { auth: { identity: { password: { user } } } }],
    ['methods that are not an array', { auth: { identity: { methods: 'password', password: { user } } } }],
    ['an empty methods array', { auth: { identity: { methods: [], password: { user } } } }],
    ['a listed method without its object', { auth: { identity: { methods: ['password'] } } }],
    ['totp listed without its object', { auth: { identity: { methods: ['password', 'totp'], password: { user } } } }],
    ['an unknown method', { auth: { identity: { methods: ['saml'], saml: {} } } }],
    ['password and token together', { auth: { identity: { methods: ['password', 'token'], password: { user }, token: { id: 'x' } } } }],
    ['totp alone', { auth: { identity: { methods: ['totp'], totp: { user: { id: MFA.id, passcode: '123456' } } } } }],
    ['a user name without a domain', passwordAuth({ name: USER.name, password: USER.password })],
    ['a user without id or name', passwordAuth({ password: USER.password, domain: { name: DEMO_IAM_DOMAIN.name } })],
    ['a domain without id or name', passwordAuth({ name: USER.name, password: USER.password, domain: {} })],
    ['a password that is not a string', passwordAuth({ id: USER.id, password: 12345678 })],
    ['a project name without a domain', passwordAuth(user, { project: { name: PROJECT.name } })],
    ['a project without id or name', passwordAuth(user, { project: {} })],
    ['both a project and a domain', passwordAuth(user, { project: { id: PROJECT.id }, domain: { id: DEMO_IAM_DOMAIN.id } })],
    ['an empty scope', passwordAuth(user, {})],
    ['a token without id', { auth: { identity: { methods: ['token'], token: {} }, scope: { project: { id: PROJECT.id } } } }],
  ])('answers %s with 400 in the Keystone dialect', async (_, payload) => {
    const { status, headers, body } = await createToken(payload);
    expect(status).toBe(400);
    expect(headers.get('x-subject-token')).toBeNull();
    expect(body).toEqual({ error: { code: 400, title: 'Bad Request', message: expect.any(String) } });
    expect(body.error.message.length).toBeGreaterThan(10);
  });

  it("uses Keystone's wording", async () => {
    const missing = await createToken({ auth: { identity: { methods: ['password'] } } });
    expect(missing.body.error.message).toMatch(/^Expecting to find password in identity\. /);
    const wrongType = await createToken({ auth: { identity: { methods: 'password' } } });
    expect(wrongType.body.error.message).toBe("Invalid input for field 'auth/identity/methods': expected array, received string.");
  });

  it('ignores unknown keys', async () => {
    const payload = passwordAuth({ ...byName(USER), extra: true }, { project: { id: PROJECT.id, x: 1 } });
    const { status } = await createToken({ ...payload, auth: { ...payload.auth, unknown: { a: 1 } }, more: [] });
    expect(status).toBe(201);
  });

  it('answers another HTTP method on the path with 405 in the Keystone dialect', async () => {
    const res = await fetch(`${emulator.url}/v3/auth/tokens`, { method: 'PUT', body: '{}' });
    expect(res.status).toBe(405);
    expect(res.headers.get('x-request-id')).toBeTruthy();
    expect(await res.json()).toMatchObject({ error: { code: 405, title: 'Method Not Allowed' } });
  });

  it('renders injected faults in the Keystone dialect and counts requests', async () => {
    emulator.inject({ route: 'iam.createToken', status: 503, times: 1 });
    const { status, body } = await createToken(passwordAuth(byName(USER)));
    expect(status).toBe(503);
    expect(body).toEqual({ error: { code: 503, title: 'Service Unavailable', message: 'Injected fault.' } });
    expect((await createToken(passwordAuth(byName(USER)))).status).toBe(201);
    expect(emulator.counters()['iam.createToken']?.requests).toBe(2);
  });
});

// ---------------------------------------------------------------- lockout

describe('lockout', () => {
  async function failPasswords(count: number, user = USER): Promise<void> {
    for (let i = 0; i < count; i++) {
      const { status, body } = await createToken(passwordAuth(byName(user, `Wrong-Passw0rd-${i}`)));
      expect(status).toBe(401);
      expect(body).toEqual(UNAUTHORIZED);
    }
  }

  async function expectLocked(payload: unknown): Promise<number> {
    const { status, body } = await createToken(payload);
    expect(status).toBe(401);
    expect(body).toEqual({ error: { code: 401, title: 'Unauthorized', message: expect.stringMatching(LOCKED_MESSAGE) } });
    return Number(LOCKED_MESSAGE.exec(body.error.message)![1]);
  }

  it('locks a user after 5 wrong passwords, even against the right one, until the lock expires', async () => {
    await failPasswords(IAM_LOCKOUT.maxFailures);
    const seconds = await expectLocked(passwordAuth(byName(USER)));
    expect(seconds).toBe(IAM_LOCKOUT.lockMs / 1000);
    await expectLocked(passwordAuth({ id: USER.id, password: USER.password }));
    await expectLocked(passwordAuth(byName(USER, 'Wrong-again-1')));

    emulator.advanceClock(IAM_LOCKOUT.lockMs - 60_000);
    expect(await expectLocked(passwordAuth(byName(USER)))).toBe(60);

    emulator.advanceClock(60_000 + 1000);
    expect((await createToken(passwordAuth(byName(USER)))).status).toBe(201);
  });

  it('locks only the user concerned', async () => {
    await failPasswords(IAM_LOCKOUT.maxFailures);
    const passcode = passcodeAt(toMidStep());
    expect((await createToken(passwordAuth(byName(MFA), undefined, { id: MFA.id, passcode }))).status).toBe(201);
  });

  it('counts only failures within the window', async () => {
    await failPasswords(IAM_LOCKOUT.maxFailures - 1);
    emulator.advanceClock(IAM_LOCKOUT.windowMs + 1000);
    await failPasswords(1);
    expect((await createToken(passwordAuth(byName(USER)))).status).toBe(201);
  });

  it('clears the count on a successful sign-in', async () => {
    await failPasswords(IAM_LOCKOUT.maxFailures - 1);
    expect((await createToken(passwordAuth(byName(USER)))).status).toBe(201);
    await failPasswords(IAM_LOCKOUT.maxFailures - 1);
    expect((await createToken(passwordAuth(byName(USER)))).status).toBe(201);
  });

  it('counts wrong passcodes too', async () => {
    toMidStep();
    for (let i = 0; i < IAM_LOCKOUT.maxFailures; i++) {
      const { body } = await createToken(passwordAuth(byName(MFA), undefined, { id: MFA.id, passcode: wrongPasscode() }));
      expect(body).toEqual(UNAUTHORIZED);
    }
    await expectLocked(passwordAuth(byName(MFA), undefined, { id: MFA.id, passcode: passcodeAt(emulator.state.now()) }));
  });

  it('does not count a missing passcode of an MFA user', async () => {
    for (let i = 0; i < IAM_LOCKOUT.maxFailures; i++) {
      expect((await createToken(passwordAuth(byName(MFA)))).body).toEqual(MFA_REQUIRED);
    }
    const passcode = passcodeAt(toMidStep());
    expect((await createToken(passwordAuth(byName(MFA), undefined, { id: MFA.id, passcode }))).status).toBe(201);
  });

  it('is cleared by an emulator reset', async () => {
    await failPasswords(IAM_LOCKOUT.maxFailures);
    emulator.reset();
    expect((await createToken(passwordAuth(byName(USER)))).status).toBe(201);
  });
});
