// The IAM sign-in guard on its own (one process, no Redis), on a clock the test moves: its
// sliding window, the wait it announces, what clears it, and its budgets however the user is
// named (2 per form until a sign-in links the forms, then one budget of 3). The guard inside the
// gateway (no IAM call when refused, the IAM never locking the user): test/hardening/resilience.test.ts;
// the same rule shared through Redis by several replicas: test/cluster/.
import { describe, expect, it } from 'vitest';
import { GatewayError } from '../../src/errors.ts';
import { LocalSignInGuard, type IamUserRef, type SignInAttempt } from '../../src/upstreams/iam/guard.ts';

const EP = 'https://iam.example';
const USER = { id: 'u-1', name: 'Alice', domain: { id: 'd-1', name: 'Acme' } };
const BY_NAME = { name: USER.name, domain: { name: USER.domain.name } };
const BY_DOMAIN_ID = { name: USER.name, domain: { id: USER.domain.id } };
const BY_ID = { id: USER.id };
const FORMS: IamUserRef[] = [BY_NAME, BY_DOMAIN_ID, BY_ID];

/** A guard of 3 failures in 60 s, on a clock that moves only when told. */
function guard(maxFailures = 3) {
  let t = 1_000_000;
  const g = new LocalSignInGuard(maxFailures, 60_000, () => t);
  /** The refusal begin() throws, or the attempt when it may go to the IAM. */
  const attempt = async (user: IamUserRef, endpoint = EP): Promise<SignInAttempt | GatewayError> => {
    try {
      return await g.begin(endpoint, user);
    } catch (e) {
      expect(e).toBeInstanceOf(GatewayError);
      return e as GatewayError;
    }
  };
  const refusal = async (user: IamUserRef, endpoint = EP) => {
    const a = await attempt(user, endpoint);
    if (a instanceof GatewayError) return a;
    await a.released();
    return undefined;
  };
  /** One wrong password: true when it reached the IAM (and was rejected there). */
  const fail = async (user: IamUserRef, endpoint = EP) => {
    const a = await attempt(user, endpoint);
    if (a instanceof GatewayError) return false;
    await a.rejected();
    return true;
  };
  /** Wrong passwords until the guard refuses (at most `max`): how many reached the IAM. */
  const failUntilRefused = async (user: IamUserRef, max = 10) => {
    let reached = 0;
    for (let i = 0; i < max; i++) if (await fail(user)) reached++;
    return reached;
  };
  const signIn = async (user: IamUserRef = BY_NAME) => {
    const a = await attempt(user);
    if (a instanceof GatewayError) throw a;
    await a.succeeded(USER);
  };
  return { g, attempt, refusal, fail, failUntilRefused, signIn, advance: (ms: number) => void (t += ms) };
}

describe('LocalSignInGuard, a user it has seen sign in (forms linked: one budget of 3)', () => {
  it('lets 3 failures through and refuses the 4th attempt: RATE_LIMITED, SIGN_IN_GUARD, retry after the whole window', async () => {
    const x = guard();
    await x.signIn();
    for (let i = 0; i < 3; i++) expect(await x.fail(BY_NAME)).toBe(true);
    const err = (await x.refusal(BY_NAME))!;
    expect(err.extensions).toEqual({ code: 'RATE_LIMITED', reason: 'SIGN_IN_GUARD', retryAfterSeconds: 60 });
    expect(err.message).toMatch(/60 s/);
  });

  it('every form of the user spends the same budget: 3 in all, whatever the mix', async () => {
    const x = guard();
    await x.signIn();
    let reached = 0;
    for (let i = 0; i < 9; i++) if (await x.fail(FORMS[i % 3]!)) reached++;
    expect(reached).toBe(3);
    for (const form of FORMS) expect(await x.refusal(form)).toBeDefined();
  });

  it('the announced wait counts down with the clock, rounded up to whole seconds, at least 1', async () => {
    const x = guard();
    await x.signIn(BY_ID);
    for (let i = 0; i < 3; i++) await x.fail(BY_ID);
    x.advance(20_000);
    expect((await x.refusal(BY_ID))?.extensions.retryAfterSeconds).toBe(40);
    x.advance(39_001);
    expect((await x.refusal(BY_ID))?.extensions.retryAfterSeconds).toBe(1);
    x.advance(998);
    expect((await x.refusal(BY_ID))?.extensions.retryAfterSeconds).toBe(1);
  });

  it('the window slides: each failure counts for exactly 60 s, so the oldest expiring lets one attempt through', async () => {
    const x = guard();
    await x.signIn();
    await x.fail(BY_ID); // t0
    x.advance(10_000);
    await x.fail(BY_ID); // t0 + 10 s
    x.advance(10_000);
    await x.fail(BY_ID); // t0 + 20 s
    expect((await x.refusal(BY_ID))?.extensions.retryAfterSeconds).toBe(40);
    x.advance(39_999); // t0 + 59.999 s
    expect(await x.refusal(BY_ID)).toBeDefined();
    x.advance(1); // t0 + 60 s: the first failure has left the window
    expect(await x.fail(BY_ID)).toBe(true); // and a new failure fills it again, until t0 + 70 s
    expect((await x.refusal(BY_ID))?.extensions.retryAfterSeconds).toBe(10);
    x.advance(10_000);
    expect(await x.refusal(BY_ID)).toBeUndefined();
  });

  it('a success clears the count', async () => {
    const x = guard();
    await x.signIn();
    await x.fail(BY_ID);
    await x.fail(BY_NAME);
    await x.signIn(BY_DOMAIN_ID);
    expect(await x.failUntilRefused(BY_ID)).toBe(3);
  });

  it('an attempt that is released (MFA asked for, upstream trouble) does not count', async () => {
    const x = guard();
    await x.signIn();
    for (let i = 0; i < 10; i++) expect(await x.refusal(BY_NAME)).toBeUndefined();
    expect(await x.failUntilRefused(BY_NAME)).toBe(3);
  });

  it('attempts in flight count: 10 concurrent wrong passwords, 3 reach the IAM', async () => {
    const x = guard();
    await x.signIn();
    const attempts = await Promise.all(Array.from({ length: 10 }, () => x.attempt(BY_NAME)));
    const through = attempts.filter((a): a is SignInAttempt => !(a instanceof GatewayError));
    expect(through).toHaveLength(3);
    await Promise.all(through.map((a) => a.rejected()));
    expect(await x.refusal(BY_ID)).toBeDefined();
  });

  it('a user the IAM has locked is refused for the whole window at once, then let through', async () => {
    const x = guard();
    await x.signIn();
    const a = (await x.attempt(BY_ID)) as SignInAttempt;
    await a.lockedByIam();
    expect((await x.refusal(BY_NAME))?.extensions.retryAfterSeconds).toBe(60);
    x.advance(59_999);
    expect(await x.refusal(BY_ID)).toBeDefined();
    x.advance(1);
    expect(await x.refusal(BY_ID)).toBeUndefined();
  });

  it('maxFailures 0 turns it off: never refuses, counts nothing', async () => {
    const x = guard(0);
    for (let i = 0; i < 10; i++) expect(await x.fail(BY_ID)).toBe(true);
    await ((await x.attempt(BY_ID)) as SignInAttempt).lockedByIam();
    expect(await x.refusal(BY_ID)).toBeUndefined();
  });

  it('counts each user on each endpoint apart; names are compared without case', async () => {
    const x = guard();
    await x.signIn();
    await x.failUntilRefused(BY_NAME);
    expect(await x.refusal({ name: 'ALICE', domain: { name: 'acme' } })).toBeDefined();
    expect(await x.refusal({ name: 'Bob', domain: { name: 'Acme' } })).toBeUndefined();
    expect(await x.refusal(BY_NAME, 'https://other-iam.example')).toBeUndefined();
  });
});

describe('LocalSignInGuard, a user it has never seen sign in (2 by name, 2 by id)', () => {
  it('never more than 4 rejected calls, whatever forms a client uses', async () => {
    const x = guard();
    let reached = 0;
    for (let i = 0; i < 12; i++) if (await x.fail(FORMS[i % 3]!)) reached++;
    expect(reached).toBe(4);
    for (const form of FORMS) expect(await x.refusal(form)).toBeDefined();
  });

  it('by name, the budget is the name’s in any domain (a domain id and a domain name cannot be told apart yet)', async () => {
    const x = guard();
    expect(await x.fail(BY_NAME)).toBe(true);
    expect(await x.fail({ name: 'alice', domain: { name: 'Other' } })).toBe(true);
    expect(await x.refusal(BY_DOMAIN_ID)).toBeDefined();
    expect(await x.refusal({ name: 'Alicia', domain: { name: 'Acme' } })).toBeUndefined();
    expect(await x.failUntilRefused(BY_ID)).toBe(2);
  });

  it('a sign-in links the forms: from then on one budget of 3 for all of them', async () => {
    const x = guard();
    expect(await x.fail(BY_NAME)).toBe(true);
    expect(await x.fail(BY_ID)).toBe(true);
    await x.signIn(BY_DOMAIN_ID);
    expect(await x.failUntilRefused(BY_ID)).toBe(3);
    expect(await x.refusal(BY_NAME)).toBeDefined();
  });

  it('another user’s sign-in under the same name (another domain) does not clear the count by name', async () => {
    const x = guard();
    await x.failUntilRefused({ name: 'Alice', domain: { name: 'Other' } });
    await x.signIn(BY_ID); // Alice of Acme signs in (her name is spent): her forms now count under her id
    expect(await x.refusal({ name: 'Alice', domain: { name: 'Other' } })).toBeDefined();
    expect(await x.refusal(BY_NAME)).toBeUndefined();
  });

  it('a user without a domain in its token is linked by its id only', async () => {
    const x = guard();
    const a = (await x.attempt(BY_ID)) as SignInAttempt;
    await a.succeeded({ id: USER.id, name: USER.name, domain: null });
    expect(await x.failUntilRefused(BY_ID)).toBe(3);
    expect(await x.refusal(BY_NAME)).toBeUndefined();
  });
});
