// The IAM sign-in guard on its own, on a clock the test moves: its sliding window, the wait it
// announces, what clears it, and one count per user however the user is named. The guard inside
// the gateway (no IAM call when refused, the IAM never locking the user): test/hardening/resilience.test.ts.
import { describe, expect, it } from 'vitest';
import { GatewayError } from '../../src/errors.ts';
import { SignInGuard } from '../../src/upstreams/iam/guard.ts';

const EP = 'https://iam.example';
const USER = { id: 'u-1', name: 'Alice', domain: { id: 'd-1', name: 'Acme' } };
const BY_NAME = { name: USER.name, domain: { name: USER.domain.name } };
const BY_DOMAIN_ID = { name: USER.name, domain: { id: USER.domain.id } };
const BY_ID = { id: USER.id };

/** A guard of 3 failures in 60 s, on a clock that moves only when told. */
function guard(maxFailures = 3) {
  let t = 1_000_000;
  const g = new SignInGuard(maxFailures, 60_000, () => t);
  return { g, advance: (ms: number) => void (t += ms) };
}

/** The refusal check() throws, or undefined when the attempt may go to the IAM. */
function refusal(g: SignInGuard, key: string): GatewayError | undefined {
  try {
    g.check(key);
    return undefined;
  } catch (e) {
    expect(e).toBeInstanceOf(GatewayError);
    return e as GatewayError;
  }
}

describe('SignInGuard', () => {
  it('lets 3 failures through and refuses the 4th attempt: RATE_LIMITED, SIGN_IN_GUARD, retry after the whole window', () => {
    const { g } = guard();
    const key = g.key(EP, BY_NAME);
    for (let i = 0; i < 3; i++) {
      expect(refusal(g, key)).toBeUndefined();
      g.failure(key);
    }
    const err = refusal(g, key)!;
    expect(err.extensions).toEqual({ code: 'RATE_LIMITED', reason: 'SIGN_IN_GUARD', retryAfterSeconds: 60 });
    expect(err.message).toMatch(/60 s/);
  });

  it('the announced wait counts down with the clock, rounded up to whole seconds, at least 1', () => {
    const { g, advance } = guard();
    const key = g.key(EP, BY_ID);
    for (let i = 0; i < 3; i++) g.failure(key);
    advance(20_000);
    expect(refusal(g, key)?.extensions.retryAfterSeconds).toBe(40);
    advance(39_001);
    expect(refusal(g, key)?.extensions.retryAfterSeconds).toBe(1);
    advance(998);
    expect(refusal(g, key)?.extensions.retryAfterSeconds).toBe(1);
  });

  it('the window slides: each failure counts for exactly 60 s, so the oldest expiring lets one attempt through', () => {
    const { g, advance } = guard();
    const key = g.key(EP, BY_ID);
    g.failure(key); // t0
    advance(10_000);
    g.failure(key); // t0 + 10 s
    advance(10_000);
    g.failure(key); // t0 + 20 s
    expect(refusal(g, key)?.extensions.retryAfterSeconds).toBe(40);
    advance(39_999); // t0 + 59.999 s
    expect(refusal(g, key)).toBeDefined();
    advance(1); // t0 + 60 s: the first failure has left the window
    expect(refusal(g, key)).toBeUndefined();
    g.failure(key); // and a new failure fills it again, until t0 + 70 s
    expect(refusal(g, key)?.extensions.retryAfterSeconds).toBe(10);
    advance(10_000);
    expect(refusal(g, key)).toBeUndefined();
  });

  it('a success clears the count', () => {
    const { g } = guard();
    const key = g.key(EP, BY_ID);
    g.failure(key);
    g.failure(key);
    g.success(key);
    g.failure(key);
    g.failure(key);
    expect(refusal(g, key)).toBeUndefined();
    g.failure(key);
    expect(refusal(g, key)).toBeDefined();
  });

  it('a user the IAM has locked is refused for the whole window at once, then let through', () => {
    const { g, advance } = guard();
    const key = g.key(EP, BY_ID);
    g.lockedByIam(key);
    expect(refusal(g, key)?.extensions.retryAfterSeconds).toBe(60);
    advance(59_999);
    expect(refusal(g, key)).toBeDefined();
    advance(1);
    expect(refusal(g, key)).toBeUndefined();
  });

  it('maxFailures 0 turns it off: never refuses, counts nothing', () => {
    const { g } = guard(0);
    const key = g.key(EP, BY_ID);
    for (let i = 0; i < 10; i++) g.failure(key);
    g.lockedByIam(key);
    expect(refusal(g, key)).toBeUndefined();
  });

  it('counts each user on each endpoint apart; names are compared without case', () => {
    const { g } = guard();
    const key = g.key(EP, BY_NAME);
    for (let i = 0; i < 3; i++) g.failure(key);
    expect(refusal(g, key)).toBeDefined();
    expect(refusal(g, g.key(EP, { name: 'ALICE', domain: { name: 'acme' } }))).toBeDefined();
    expect(refusal(g, g.key(EP, { name: 'Bob', domain: { name: 'Acme' } }))).toBeUndefined();
    expect(refusal(g, g.key('https://other-iam.example', BY_NAME))).toBeUndefined();
  });

  it('before it has seen the user sign in, each way of naming the user is counted on its own', () => {
    const { g } = guard();
    const keys = [BY_NAME, BY_DOMAIN_ID, BY_ID].map((u) => g.key(EP, u));
    expect(new Set(keys).size).toBe(3);
    for (let i = 0; i < 3; i++) g.failure(keys[0]!);
    expect(refusal(g, keys[1]!)).toBeUndefined();
  });

  it('once a token has named the user, every form maps to one key and the failures counted so far are merged there', () => {
    const { g, advance } = guard();
    g.failure(g.key(EP, BY_NAME)); // t0
    advance(1_000);
    g.failure(g.key(EP, BY_DOMAIN_ID)); // t0 + 1 s
    const canonical = g.learn(EP, USER);
    for (const form of [BY_NAME, BY_DOMAIN_ID, BY_ID]) expect(g.key(EP, form)).toBe(canonical);
    expect(refusal(g, canonical)).toBeUndefined();
    g.failure(g.key(EP, BY_ID));
    const err = refusal(g, g.key(EP, BY_NAME))!;
    // The oldest of the merged failures (t0) sets the wait: 60 s from t0, 59 s from now.
    expect(err.extensions.retryAfterSeconds).toBe(59);
  });

  it('a user without a domain in its token is known by its id only', () => {
    const { g } = guard();
    const canonical = g.learn(EP, { id: USER.id, name: USER.name, domain: null });
    expect(g.key(EP, BY_ID)).toBe(canonical);
    expect(g.key(EP, BY_NAME)).not.toBe(canonical);
  });
});
