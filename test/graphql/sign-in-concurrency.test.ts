// The sign-in guard reserves an attempt per sign-in in flight. Concurrent sign-ins of one user
// beyond its failure budget wait for those to settle instead of being refused: a job that starts
// ten workers under one account signs all ten in.
import { describe, expect, it } from 'vitest';
import { DEMO_IAM_DOMAIN, DEMO_IAM_USERS } from '../../src/emulator/fixtures.ts';
import { CREATE } from '../iam-documents.ts';
import { useStack } from '../helpers.ts';

const stack = useStack((c) => ({ iamGuard: { ...c.iamGuard, maxFailures: 3 } }));
const password = (p: string) => ({ userName: DEMO_IAM_USERS.password.name, domainName: DEMO_IAM_DOMAIN.name, password: p });
const signIn = (p: string) => stack.gql(CREATE, { input: { password: password(p), includeCatalog: false } }, {});
const iamCalls = () => stack.emulator.counters()['iam.createToken']?.requests ?? 0;

describe('concurrent sign-ins of one user (guard on, budget 3)', () => {
  it('ten at once with the right password all succeed, one IAM call each', async () => {
    stack.emulator.inject({ route: 'iam.createToken', latencyMs: 100 });
    const results = await Promise.all(Array.from({ length: 10 }, () => signIn(DEMO_IAM_USERS.password.password)));
    for (const r of results) expect(r.errors, JSON.stringify(r.errors)).toBeUndefined();
    expect(iamCalls()).toBe(10);
    // They did overlap (each success clears the user's count, so how many overlap depends on timing).
    expect(stack.emulator.counters()['iam.createToken']!.maxInFlight).toBeGreaterThan(1);
  });

  it('ten at once with a wrong password: at most the budget reaches the IAM, the rest are refused', async () => {
    const results = await Promise.all(Array.from({ length: 10 }, () => signIn('not-the-password')));
    const codes = results.map((r) => r.errors?.[0]?.extensions.code);
    expect(codes.filter((c) => c === 'UNAUTHENTICATED').length).toBe(iamCalls());
    expect(iamCalls()).toBeLessThanOrEqual(3);
    expect(codes.filter((c) => c === 'RATE_LIMITED').length).toBe(10 - iamCalls());
  });
});
