// IAM secrets never leak: after each sign-in flow (password, MFA, rescoping, wrong password,
// wrong passcode, lockout, bad tokens), no gateway log line and no GraphQL error carries a
// password, a passcode, the federated token, or any token value the IAM issued.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { authenticator } from 'otplib';
import { startStack, type GqlResult, type Stack } from '../helpers.ts';
import { DEMO_IAM_DOMAIN, DEMO_IAM_FEDERATED, DEMO_IAM_PROJECTS, DEMO_IAM_USERS, IAM_LOCKOUT } from '../../src/emulator/fixtures.ts';

const USER = DEMO_IAM_USERS.password;
const MFA = DEMO_IAM_USERS.mfa;
const PROJECT = DEMO_IAM_PROJECTS.euWest0;
const NO_AUTH: Record<string, string> = {};

const CREATE = /* GraphQL */ `
  mutation Create($input: CreateIamTokenInput!) {
    createIamToken(input: $input) { value methods expiresAt user { id name } project { id } domain { id } }
  }
`;
const RESCOPE = /* GraphQL */ `
  mutation Rescope($input: CreateScopedIamTokenInput!) {
    createScopedIamToken(input: $input) { value methods expiresAt user { id name } project { id } domain { id } }
  }
`;

/** A 6-digit code that the IAM does not accept now (outside ±3 steps of the current one). */
function wrongPasscode(secret: string): string {
  const wide = authenticator.clone({ window: 3 });
  for (let n = 246_801; ; n = (n + 104_729) % 1_000_000) {
    const code = String(n).padStart(6, '0');
    if (!wide.check(code, secret)) return code;
  }
}

describe('IAM secrets stay out of logs and errors', () => {
  let stack: Stack;
  /** Label → secret used or issued in the current test. */
  let secrets: Map<string, string>;
  /** Every GraphQL error of the current test. */
  let errors: NonNullable<GqlResult<any>['errors']>;
  let logMark = 0;

  const remember = (label: string, value: string) => {
    expect(value.length, `secret ${label} is too short to search for`).toBeGreaterThanOrEqual(6);
    secrets.set(label, value);
  };

  const run = async (query: string, input: Record<string, unknown>) => {
    const r = await stack.gql(query, { input }, NO_AUTH);
    errors.push(...(r.errors ?? []));
    for (const field of ['createIamToken', 'createScopedIamToken']) {
      const value = r.data?.[field]?.value;
      if (typeof value === 'string') remember(`issued token (${field} #${secrets.size})`, value);
    }
    return r;
  };
  const create = (input: Record<string, unknown>) => run(CREATE, input);
  const rescope = (input: Record<string, unknown>) => run(RESCOPE, input);

  const signIn = (password: string, user: typeof USER | typeof MFA = USER) => {
    remember(`password of ${user.name} (sent)`, password);
    return create({ password: { userName: user.name, domainName: user.domain.name, password }, scope: { project: { id: PROJECT.id } } });
  };

  /** Scans what this test produced: its log lines and the whole JSON of every GraphQL error. */
  function expectNoLeaks({ iamCalled = true } = {}): void {
    const logs = stack.logs.slice(logMark);
    // Not vacuous: the gateway logged the IAM calls it made.
    if (iamCalled) expect(logs.some((l) => l.includes('"upstream":"iam"'))).toBe(true);
    const haystacks = [
      ...logs.map((line, i) => ({ where: `log line ${i}`, text: line })),
      ...errors.map((e, i) => ({ where: `error ${i} (${e.extensions?.code})`, text: JSON.stringify(e) })),
      ...errors.map((e, i) => ({ where: `error ${i} message`, text: e.message })),
    ];
    const leaks: string[] = [];
    for (const { where, text } of haystacks) {
      for (const [label, secret] of secrets) {
        if (text.includes(secret)) leaks.push(`${label} in ${where}: ${text.slice(0, 400)}`);
      }
    }
    expect(leaks).toEqual([]);
  }

  beforeAll(async () => {
    // The gateway's own sign-in guard off, so that the lockout flow reaches the IAM's lock message.
    stack = await startStack((c) => ({ iamGuard: { ...c.iamGuard, maxFailures: 0 } }));
  });
  beforeEach(() => {
    stack.emulator.reset();
    secrets = new Map([
      ['password of the demo user', USER.password],
      ['password of the MFA user', MFA.password],
      ['TOTP secret of the MFA user', MFA.totpSecret],
      ['federated token', DEMO_IAM_FEDERATED.token],
    ]);
    errors = [];
    logMark = stack.logs.length;
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('password sign-in', async () => {
    const r = await signIn(USER.password);
    expect(r.errors).toBeUndefined();
    expect(r.data.createIamToken.methods).toEqual(['password']);
    expectNoLeaks();
  });

  it('MFA sign-in: MFA_REQUIRED first, then password + passcode', async () => {
    const required = await signIn(MFA.password, MFA);
    expect(required.errors?.[0]?.extensions.code).toBe('MFA_REQUIRED');

    const passcode = authenticator.generate(MFA.totpSecret);
    remember('passcode', passcode);
    const r = await create({
      password: { userName: MFA.name, domainName: MFA.domain.name, password: MFA.password },
      totp: { userId: MFA.id, passcode },
    });
    expect(r.errors).toBeUndefined();
    expect([...r.data.createIamToken.methods].sort()).toEqual(['password', 'totp']);
    expectNoLeaks();
  });

  it('rescoping: the federated token, and a token from a password sign-in', async () => {
    const federated = await rescope({
      token: DEMO_IAM_FEDERATED.token,
      scope: { project: { name: PROJECT.name, domain: { name: DEMO_IAM_DOMAIN.name } } },
    });
    expect(federated.errors).toBeUndefined();
    expect(federated.data.createScopedIamToken.methods).toEqual(['token']);

    const unscoped = await create({ password: { userId: USER.id, password: USER.password } });
    expect(unscoped.errors).toBeUndefined();
    const scoped = await rescope({ token: unscoped.data.createIamToken.value, scope: { domain: { id: DEMO_IAM_DOMAIN.id } } });
    expect(scoped.errors).toBeUndefined();
    expect(scoped.data.createScopedIamToken.domain).toEqual({ id: DEMO_IAM_DOMAIN.id });
    expect(secrets.size).toBeGreaterThanOrEqual(7);
    expectNoLeaks();
  });

  it('rescoping failures: a garbage token, an expired token, an unknown project', async () => {
    const garbage = 'MIIgarbageTokenThatTheIamNeverIssued0123456789';
    remember('garbage token', garbage);
    const g = await rescope({ token: garbage, scope: { domain: { id: DEMO_IAM_DOMAIN.id } } });
    expect(g.errors?.[0]?.extensions.code).toBe('UNAUTHENTICATED');

    const unscoped = await create({ password: { userId: USER.id, password: USER.password } });
    stack.emulator.advanceClock(24 * 3_600_000 + 1000);
    const expired = await rescope({ token: unscoped.data.createIamToken.value, scope: { project: { id: PROJECT.id } } });
    expect(expired.errors?.[0]?.extensions.code).toBe('UNAUTHENTICATED');

    const unknown = await rescope({ token: DEMO_IAM_FEDERATED.token, scope: { project: { id: 'ffffffffffffffffffffffffffffffff' } } });
    expect(unknown.errors?.[0]?.extensions.code).toBe('NOT_FOUND');
    expectNoLeaks();
  });

  it('wrong password', async () => {
    const r = await signIn('Wrong-Passw0rd-For-Demo!');
    expect(r.errors?.[0]?.extensions.code).toBe('UNAUTHENTICATED');
    expectNoLeaks();
  });

  it('wrong passcode', async () => {
    const passcode = wrongPasscode(MFA.totpSecret);
    remember('wrong passcode', passcode);
    const r = await create({
      password: { userName: MFA.name, domainName: MFA.domain.name, password: MFA.password },
      totp: { userId: MFA.id, passcode },
    });
    expect(r.errors?.[0]?.extensions.code).toBe('UNAUTHENTICATED');
    expectNoLeaks();
  });

  it('invalid input: a passcode that is not 6 digits is not echoed', async () => {
    remember('non-numeric passcode', 'abcdef');
    const r = await create({
      password: { userName: MFA.name, domainName: MFA.domain.name, password: MFA.password },
      totp: { userId: MFA.id, passcode: 'abcdef' },
    });
    expect(r.errors?.[0]?.extensions.code).toBe('BAD_USER_INPUT');
    expect(stack.emulator.counters()['iam.createToken']?.requests ?? 0).toBe(0);
    expectNoLeaks({ iamCalled: false });
  });

  it('an IAM that quotes the request in its errors: the gateway redacts what it passes on', async () => {
    // Real Keystone quotes the token id in "Could not find token: <id>."; some gateways echo more.
    stack.emulator.inject({
      route: 'iam.createToken',
      status: 400,
      times: 1,
      body: { error_code: 'IAM.0002', error_msg: `Bad request: password=${USER.password}`, request_id: 'req-echo-1' },
    });
    const echoedPassword = await signIn(USER.password);
    expect(echoedPassword.errors?.[0]?.extensions.code).toBe('BAD_USER_INPUT');

    const passcode = authenticator.generate(MFA.totpSecret);
    remember('passcode', passcode);
    stack.emulator.inject({
      route: 'iam.createToken',
      status: 401,
      times: 1,
      body: { error: { code: 401, title: 'Unauthorized', message: `The user is locked (passcode ${passcode} for ${MFA.password}).` } },
    });
    const echoedPasscode = await create({
      password: { userName: MFA.name, domainName: MFA.domain.name, password: MFA.password },
      totp: { userId: MFA.id, passcode },
    });
    expect(echoedPasscode.errors?.[0]?.extensions.code).toBe('RATE_LIMITED');

    stack.emulator.inject({
      route: 'iam.createToken',
      status: 404,
      times: 1,
      body: { error: { code: 404, title: 'Not Found', message: `Could not find token: ${DEMO_IAM_FEDERATED.token}.` } },
    });
    const echoedToken = await rescope({ token: DEMO_IAM_FEDERATED.token, scope: { domain: { id: DEMO_IAM_DOMAIN.id } } });
    expect(echoedToken.errors?.[0]?.extensions.code).toBe('UNAUTHENTICATED');

    stack.emulator.inject({
      route: 'iam.createToken',
      status: 403,
      times: 1,
      body: { error: { code: 403, title: 'Forbidden', message: `Token ${DEMO_IAM_FEDERATED.token} may not be rescoped.` } },
    });
    const echoedToken403 = await rescope({ token: DEMO_IAM_FEDERATED.token, scope: { domain: { id: DEMO_IAM_DOMAIN.id } } });
    expect(echoedToken403.errors?.[0]?.extensions.code).toBe('FORBIDDEN');
    expectNoLeaks();
  });

  it('variables that do not fit the input type: the error does not echo the secrets beside them', async () => {
    // Sent as a number below, so take one without a leading zero (it must read the same).
    const passcode = [authenticator.generate(MFA.totpSecret), '246801'].find((c) => !c.startsWith('0'))!;
    remember('passcode', passcode);
    // A typo beside the password (`domain` for `domainName`).
    await create({ password: { userName: USER.name, domain: DEMO_IAM_DOMAIN.name, password: USER.password } });
    // An unknown field beside the password.
    await create({ password: { userName: USER.name, domainName: DEMO_IAM_DOMAIN.name, password: USER.password }, project: PROJECT.id });
    // The passcode sent as a number, as a careless client would.
    await create({
      password: { userName: MFA.name, domainName: MFA.domain.name, password: MFA.password },
      totp: { userId: MFA.id, passcode: Number(passcode) },
    });
    // An unknown field beside the federated token.
    await rescope({ token: DEMO_IAM_FEDERATED.token, scope: { domain: { id: DEMO_IAM_DOMAIN.id } }, catalog: false });
    expect(errors).toHaveLength(4);
    expect(stack.emulator.counters()['iam.createToken']?.requests ?? 0).toBe(0);
    expectNoLeaks({ iamCalled: false });
  });

  it('a misfit variable whose password contains "; " (graphql-js\'s own separator) is not echoed, not even in part', async () => {
    const passwords = ['Demo; Secret-Tail-4711', 'Demo at "input"; Secret-Tail-4711; Field "x"'];
    passwords.forEach((p, i) => remember(`password ${i} containing "; "`, p));
    remember('the part of those passwords after "; "', 'Secret-Tail-4711');
    for (const password of passwords) {
      // `domain` for `domainName`: the whole password object fails to coerce.
      await create({ password: { userName: USER.name, domain: DEMO_IAM_DOMAIN.name, password } });
      // An unknown top-level field beside the password.
      await create({ password: { userName: USER.name, domainName: DEMO_IAM_DOMAIN.name, password }, project: PROJECT.id });
    }
    expect(errors).toHaveLength(2 * passwords.length);
    for (const e of errors) expect(e.extensions?.code).toBe('BAD_USER_INPUT');
    expect(stack.emulator.counters()['iam.createToken']?.requests ?? 0).toBe(0);
    expectNoLeaks({ iamCalled: false });
  });

  it('lockout: 5 wrong passwords, then the right one', async () => {
    for (let i = 0; i < IAM_LOCKOUT.maxFailures; i++) {
      const r = await signIn(`Wrong-Passw0rd-${i}!`);
      expect(r.errors, `attempt ${i + 1}`).toHaveLength(1);
      expect(r.errors![0]!.extensions.code, `attempt ${i + 1}`).toBe('UNAUTHENTICATED');
      expect(r.data?.createIamToken).toBeNull();
    }
    const locked = await signIn(USER.password);
    expect(locked.errors?.[0]?.extensions).toMatchObject({ code: 'RATE_LIMITED', reason: 'USER_LOCKED' });
    expectNoLeaks();
  });
});
