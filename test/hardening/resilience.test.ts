// How the gateway behaves when an upstream misbehaves: 5xx bursts, slow answers, the request
// deadline, resets and garbage, the circuit breaker, bounded concurrency, the retry budget,
// and the IAM sign-in guard that keeps users from being locked out by the IAM.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEMO_ACCESS_TOKENS, DEMO_AUTHENTICATION_TOKENS, DEMO_CONSUMERS, DEMO_IAM_USERS } from '../../src/emulator/fixtures.ts';
import { movableClock, startStack, unlimitedRetryBudget, useStack, type GqlResult, type Stack } from '../helpers.ts';
import { startHttpGateway } from '../http-gateway.ts';
import {
  CREATE_IAM_TOKEN,
  IAM_ROUTE,
  JWT_ROUTE,
  LIST_ROUTE,
  OBTAIN_JWT,
  SMALL,
  TOKENS,
  calls,
  metricValue,
  metricsText,
  sleep,
} from './support.ts';

const USER = DEMO_IAM_USERS.password;
const OTHER_USER = DEMO_IAM_USERS.mfa;
const MINT = { authorization: `Bearer ${DEMO_ACCESS_TOKENS.mint.token}` };
const USABLE = DEMO_AUTHENTICATION_TOKENS.find((t) => t.consumerId === DEMO_CONSUMERS.large && !t.revoked && t.expirationTime > Date.now())!;

/** The listing field failed alone, with this code; returns the error. */
function listingFailed(r: GqlResult<any>, code: string) {
  expect(r.status).toBe(200);
  expect(r.errors, JSON.stringify(r.data)).toHaveLength(1);
  const err = r.errors![0]!;
  expect(err.extensions.code, err.message).toBe(code);
  expect(err.path).toEqual(['instance', 'authenticationTokens']);
  expect(r.data.instance.authenticationTokens).toBeNull();
  return err;
}

function listed(r: GqlResult<any>) {
  expect(r.errors, JSON.stringify(r.errors)).toBeUndefined();
  expect(r.data.instance.authenticationTokens.totalCount).toBe(3);
}

async function timed<T>(f: () => Promise<T>): Promise<{ result: T; ms: number }> {
  const started = performance.now();
  const result = await f();
  return { result, ms: performance.now() - started };
}

const list = (stack: Stack, consumerId: string = SMALL) => stack.gql(TOKENS, { consumerId, first: 5 });

// ------------------------------------------------------------------ faults

describe('upstream faults become typed errors', () => {
  // Plenty of retry budget: these tests are about what one request sees.
  const stack = useStack(unlimitedRetryBudget);

  it('a 503 burst (listing and minting): UPSTREAM_UNAVAILABLE within the request deadline; served again once it ends', async () => {
    stack.emulator.inject({ route: LIST_ROUTE, status: 503 });
    stack.emulator.inject({ route: JWT_ROUTE, status: 503 });
    const { result, ms } = await timed(() => list(stack));
    const err = listingFailed(result, 'UPSTREAM_UNAVAILABLE');
    expect(err.extensions.upstream).toMatchObject({ service: 'idaas', status: 503 });
    expect(ms).toBeLessThan(stack.gateway.services.config.requestDeadlineMs);
    expect(calls(stack, LIST_ROUTE)).toBe(stack.gateway.services.config.upstream.retry.attempts);

    const minted = await stack.gql(
      OBTAIN_JWT,
      { input: { instanceId: USABLE.instanceId, consumerId: USABLE.consumerId, authenticationTokenId: USABLE.authenticationTokenId } },
      MINT,
    );
    expect(minted.errors?.[0]?.extensions.code).toBe('UPSTREAM_UNAVAILABLE');
    expect(minted.data.obtainJwtAuthenticationToken).toBeNull();
    expect(calls(stack, JWT_ROUTE)).toBe(1); // minting is never retried blindly

    stack.emulator.reset();
    listed(await list(stack));
    const again = await stack.gql(
      OBTAIN_JWT,
      { input: { instanceId: USABLE.instanceId, consumerId: USABLE.consumerId, authenticationTokenId: USABLE.authenticationTokenId } },
      MINT,
    );
    expect(again.errors).toBeUndefined();
    expect(again.data.obtainJwtAuthenticationToken.jwt.value).toMatch(/^ey/);
  });

  // The bound proves the timeout: without it the answer would take the injected 3 s.
  it('an upstream slower than upstream.timeoutMs (200 ms, answer after 3 s) → UPSTREAM_TIMEOUT well before 3 s', async () => {
    const slow = await startStack((c) => ({ upstream: { ...c.upstream, timeoutMs: 200 } }));
    try {
      slow.emulator.inject({ route: LIST_ROUTE, latencyMs: 3_000 });
      const { result, ms } = await timed(() => list(slow));
      listingFailed(result, 'UPSTREAM_TIMEOUT');
      expect(ms).toBeLessThan(2_500);
    } finally {
      await slow.close();
    }
  });

  // Without the deadline: 10 attempts of ≥ 250 ms each, at least 2.5 s. The bound (2 s) is
  // generous for a 300 ms deadline and still proves that the deadline cut the retries short.
  it('the request deadline (300 ms) ends a retrying call: a typed timeout/unavailable error long before the retries would end', async () => {
    const deadline = await startStack((c) => ({
      requestDeadlineMs: 300,
      upstream: { ...c.upstream, retry: { ...c.upstream.retry, attempts: 10, budgetRatio: 1 } },
    }));
    try {
      deadline.emulator.inject({ route: LIST_ROUTE, status: 503, latencyMs: 250 });
      const { result, ms } = await timed(() => list(deadline));
      const err = result.errors?.[0];
      expect(['UPSTREAM_TIMEOUT', 'UPSTREAM_UNAVAILABLE']).toContain(err?.extensions.code);
      expect(result.data.instance.authenticationTokens).toBeNull();
      expect(ms).toBeLessThan(2_000);
      expect(calls(deadline, LIST_ROUTE)).toBeLessThanOrEqual(3);
    } finally {
      await deadline.close();
    }
  });

  // One slow call (2 s, under upstream.timeoutMs) cut by the 300 ms deadline: the bound
  // (1.5 s) proves the deadline fired, since the call alone takes 2 s.
  it('the request deadline (300 ms) cuts one slow in-flight call: UPSTREAM_TIMEOUT, not a masked internal error', async () => {
    const deadline = await startStack(() => ({ requestDeadlineMs: 300 }));
    try {
      deadline.emulator.inject({ route: LIST_ROUTE, latencyMs: 2_000 });
      const { result, ms } = await timed(() => list(deadline));
      const err = listingFailed(result, 'UPSTREAM_TIMEOUT');
      expect(err.message).toMatch(/deadline/);
      expect(ms).toBeLessThan(1_500);
      expect(deadline.logs.filter((l) => l.includes('unexpected error'))).toEqual([]);
    } finally {
      await deadline.close();
    }
  });

  it('a client that goes away mid-request: its slow upstream call is aborted at once, not left to run to its end', async () => {
    const http = await startHttpGateway();
    try {
      http.stack.emulator.inject({ route: LIST_ROUTE, latencyMs: 3_000, times: 1 });
      const client = new AbortController();
      const started = performance.now();
      const pending = fetch(http.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${DEMO_ACCESS_TOKENS.full.token}` },
        body: JSON.stringify({ query: TOKENS, variables: { consumerId: SMALL } }),
        signal: client.signal,
      }).catch((e: Error) => e);
      while (http.stack.emulator.counters()[LIST_ROUTE]?.inFlight !== 1) await sleep(10);
      client.abort();
      expect(await pending).toBeInstanceOf(Error);
      // The gateway records the upstream call as aborted, long before the emulator's 3 s.
      let aborted: number | undefined;
      while (!aborted && performance.now() - started < 2_500) {
        aborted = metricValue(await metricsText(http.stack.gateway), 'upstream_request_duration_seconds_count', { upstream: 'idaas', status: 'aborted' });
        if (!aborted) await sleep(20);
      }
      expect(aborted).toBe(1);
      expect(performance.now() - started).toBeLessThan(2_000);
    } finally {
      await http.close();
    }
  });

  // Node 20 lets the garbage collector take an AbortSignal.timeout() that only an
  // AbortSignal.any() refers to; the deadline must not depend on when the GC runs.
  it('the request deadline still fires when the garbage collector runs during the request', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const deadline = await startStack(() => ({ requestDeadlineMs: 300 }));
    try {
      deadline.emulator.inject({ route: LIST_ROUTE, latencyMs: 2_000 });
      const pending = timed(() => list(deadline));
      await sleep(100);
      gc();
      const { result, ms } = await pending;
      expect(result.errors?.[0]?.extensions.code).toMatch(/^UPSTREAM_(TIMEOUT|UNAVAILABLE)$/);
      expect(ms).toBeLessThan(1_500);
    } finally {
      await deadline.close();
    }
  });

  it('connection resets → UPSTREAM_UNAVAILABLE (the listing retried, minting not)', async () => {
    stack.emulator.inject({ route: LIST_ROUTE, reset: true });
    listingFailed(await list(stack), 'UPSTREAM_UNAVAILABLE');
    expect(calls(stack, LIST_ROUTE)).toBe(stack.gateway.services.config.upstream.retry.attempts);

    stack.emulator.inject({ route: JWT_ROUTE, reset: true });
    const minted = await stack.gql(
      OBTAIN_JWT,
      { input: { instanceId: USABLE.instanceId, consumerId: USABLE.consumerId, authenticationTokenId: USABLE.authenticationTokenId } },
      MINT,
    );
    expect(minted.errors?.[0]?.extensions.code).toBe('UPSTREAM_UNAVAILABLE');
    expect(calls(stack, JWT_ROUTE)).toBe(1);
  });

  it('one reset, then a good answer: the listing recovers transparently', async () => {
    stack.emulator.inject({ route: LIST_ROUTE, reset: true, times: 1 });
    listed(await list(stack));
    expect(calls(stack, LIST_ROUTE)).toBe(2);
  });

  it('malformed JSON (200 with a truncated body) → UPSTREAM_ERROR with the upstream request id', async () => {
    stack.emulator.inject({ route: LIST_ROUTE, malformed: true });
    const err = listingFailed(await list(stack), 'UPSTREAM_ERROR');
    expect(err.message).toMatch(/malformed JSON/);
    expect(err.extensions.upstream).toMatchObject({ service: 'idaas', status: 200 });
    expect(err.extensions.upstream.requestId).toMatch(/^[0-9A-F-]{36}$/);
    expect(calls(stack, LIST_ROUTE)).toBe(1); // it answered: nothing to retry
  });
});

// ------------------------------------------------------------------ circuit breaker

// The breaker's states, edges and timing on their own: test/upstreams/circuit-breaker.test.ts.
// Here, the same breaker inside the gateway, its cool-down passed on a clock instead of slept.
describe('circuit breaker (3 failures, 500 ms cool-down)', () => {
  let stack: Stack;
  let origin: string;
  let clock: ReturnType<typeof movableClock>;
  beforeEach(async () => {
    clock = movableClock();
    stack = await startStack((c) => ({
      upstream: { ...c.upstream, circuit: { failureThreshold: 3, resetMs: 500 }, retry: { ...c.upstream.retry, attempts: 1 } },
    }));
    origin = stack.emulator.url;
  });
  afterEach(async () => {
    await stack.close();
    clock.restore();
  });

  const ready = async () => (await (await stack.gateway.fetch('http://gateway.test/ready')).json()) as { status: string; upstreamCircuits: Record<string, string> };
  const circuitGauge = async () => metricValue(await metricsText(stack.gateway), 'upstream_circuit_state', { origin });

  async function open() {
    stack.emulator.inject({ route: LIST_ROUTE, status: 503 });
    for (let i = 0; i < 3; i++) listingFailed(await list(stack), 'UPSTREAM_UNAVAILABLE');
    expect(calls(stack, LIST_ROUTE)).toBe(3);
  }

  it('3 failing calls open it: the next query fails fast without reaching the upstream; /ready and /metrics show it open', async () => {
    listed(await list(stack));
    expect((await ready()).upstreamCircuits[origin]).toBe('closed');
    expect(await circuitGauge()).toBe(0);
    stack.emulator.reset();

    await open();
    const err = listingFailed(await list(stack), 'UPSTREAM_UNAVAILABLE');
    expect(err.message).toMatch(/circuit/i);
    expect(calls(stack, LIST_ROUTE)).toBe(3);

    const r = await ready();
    expect(r.status).toBe('ready'); // an open circuit is the upstream's trouble, not a reason to pull this instance
    expect(r.upstreamCircuits[origin]).toBe('open');
    expect(await circuitGauge()).toBe(2);
    expect(metricValue(await metricsText(stack.gateway), 'upstream_rejected_total', { reason: 'circuit_open' })).toBeGreaterThanOrEqual(1);
  });

  it('after the cool-down one probe goes through; with the fault cleared it closes the circuit', async () => {
    await open();
    expect((await ready()).upstreamCircuits[origin]).toBe('open');
    clock.advance(500);
    stack.emulator.reset();
    listed(await list(stack));
    expect(calls(stack, LIST_ROUTE)).toBe(1);
    expect((await ready()).upstreamCircuits[origin]).toBe('closed');
    expect(await circuitGauge()).toBe(0);
    listed(await list(stack));
    expect(calls(stack, LIST_ROUTE)).toBe(2);
  });

  it('a probe that fails opens it again at once (one call, then fail fast)', async () => {
    await open();
    clock.advance(500);
    expect((await ready()).upstreamCircuits[origin]).toBe('half-open');
    listingFailed(await list(stack), 'UPSTREAM_UNAVAILABLE');
    expect(calls(stack, LIST_ROUTE)).toBe(4);
    const err = listingFailed(await list(stack), 'UPSTREAM_UNAVAILABLE');
    expect(err.message).toMatch(/circuit/i);
    expect(calls(stack, LIST_ROUTE)).toBe(4);
    expect((await ready()).upstreamCircuits[origin]).toBe('open');
  });
});

// ------------------------------------------------------------------ bounded concurrency

describe('bounded concurrency (2 in flight, queue of 1)', () => {
  it('5 concurrent queries: at most 2 reach the upstream at once, 1 waits, the overflow gets UPSTREAM_UNAVAILABLE at once', async () => {
    const stack = await startStack((c) => ({ upstream: { ...c.upstream, maxConcurrency: 2, maxQueue: 1 } }));
    try {
      stack.emulator.inject({ route: LIST_ROUTE, latencyMs: 300 });
      const results = await Promise.all(['c-1', 'c-2', 'c-3', 'c-4', 'c-5'].map((c) => list(stack, c)));
      const ok = results.filter((r) => !r.errors);
      const refused = results.filter((r) => r.errors);
      expect(ok).toHaveLength(3);
      expect(refused).toHaveLength(2);
      for (const r of refused) expect(listingFailed(r, 'UPSTREAM_UNAVAILABLE').message).toMatch(/too many concurrent/);
      const counters = stack.emulator.counters()[LIST_ROUTE]!;
      expect(counters.maxInFlight).toBeLessThanOrEqual(2);
      expect(counters.requests).toBe(3);
      expect(metricValue(await metricsText(stack.gateway), 'upstream_rejected_total', { reason: 'queue_full' })).toBe(2);
    } finally {
      await stack.close();
    }
  });
});

// ------------------------------------------------------------------ retry budget

describe('retry budget (ratio 0: only the reserve of 10 retries)', () => {
  it('failing requests are retried until the reserve is spent, then tried once; /metrics counts the refusals', async () => {
    const stack = await startStack((c) => ({ upstream: { ...c.upstream, retry: { ...c.upstream.retry, attempts: 3, budgetRatio: 0 } } }));
    try {
      stack.emulator.inject({ route: LIST_ROUTE, status: 503 });
      const perRequest: number[] = [];
      for (let i = 0; i < 8; i++) {
        const before = calls(stack, LIST_ROUTE);
        listingFailed(await list(stack), 'UPSTREAM_UNAVAILABLE');
        perRequest.push(calls(stack, LIST_ROUTE) - before);
      }
      // 10 retries: five requests get their 2 retries each; afterwards one call per request.
      expect(perRequest).toEqual([3, 3, 3, 3, 3, 1, 1, 1]);
      const text = await metricsText(stack.gateway);
      expect(metricValue(text, 'upstream_rejected_total', { upstream: 'idaas', reason: 'retry_budget' })).toBe(3);
      expect(metricValue(text, 'upstream_retries_total', { upstream: 'idaas', operation: 'listAuthenticationTokens' })).toBe(10);

      stack.emulator.reset();
      listed(await list(stack)); // the budget refuses retries, never first attempts
    } finally {
      await stack.close();
    }
  });
});

// ------------------------------------------------------------------ IAM sign-in guard

// The guard's window, keys and aliases on their own: test/upstreams/sign-in-guard.test.ts.
describe('IAM sign-in guard (3 failures per user in 60 s)', () => {
  let stack: Stack;
  let clock: ReturnType<typeof movableClock>;
  beforeEach(async () => {
    clock = movableClock();
    stack = await startStack(() => ({ iamGuard: { maxFailures: 3, windowMs: 60_000 } }));
  });
  afterEach(async () => {
    await stack.close();
    clock.restore();
  });

  const signIn = (password: Record<string, unknown>) => stack.gql(CREATE_IAM_TOKEN, { input: { password } }, {});
  const byName = (u: { name: string; domain: { name: string } }, password: string) => ({ userName: u.name, domainName: u.domain.name, password });
  /** The user signs in once (the guard links its forms: one budget of 3); the IAM's counters start again. */
  const seen = async (u: typeof USER) => {
    expect((await signIn(byName(u, u.password))).errors).toBeUndefined();
    stack.emulator.state.resetCounters();
  };

  it('3 wrong passwords reach the IAM once each; the 4th attempt, even with the right password, is RATE_LIMITED SIGN_IN_GUARD without an IAM call', async () => {
    await seen(USER);
    for (let i = 1; i <= 3; i++) {
      const r = await signIn(byName(USER, `wrong-${i}`));
      expect(r.errors?.[0]?.extensions.code).toBe('UNAUTHENTICATED');
      expect(calls(stack, IAM_ROUTE)).toBe(i); // a rejected password is never retried
    }
    const r = await signIn(byName(USER, USER.password));
    expect(r.data.createIamToken).toBeNull();
    const err = r.errors![0]!;
    expect(err.extensions.code).toBe('RATE_LIMITED');
    expect(err.extensions.reason).toBe('SIGN_IN_GUARD');
    expect(err.extensions.retryAfterSeconds).toBeGreaterThan(0);
    expect(err.extensions.retryAfterSeconds).toBeLessThanOrEqual(60);
    expect(err.message).not.toContain(USER.password);
    expect(calls(stack, IAM_ROUTE)).toBe(3);
  });

  // Until it has seen the user sign in, the guard cannot tell a user id from a name: it counts
  // the name (in any domain) and the id apart, 2 each, so that together they stay under 5.
  it('a user it has never seen sign in: 2 rejected calls by name, 2 by id, never more than 4 however the user is named', async () => {
    const forms = [
      { userName: OTHER_USER.name, domainName: OTHER_USER.domain.name },
      { userName: OTHER_USER.name, domainId: OTHER_USER.domain.id },
      { userId: OTHER_USER.id },
    ];
    for (let i = 0; i < 12; i++) await signIn({ ...forms[i % 3]!, password: `wrong-${i}` });
    expect(calls(stack, IAM_ROUTE)).toBe(4);
    const r = await signIn({ ...forms[0]!, password: OTHER_USER.password });
    expect(r.errors?.[0]?.extensions).toMatchObject({ code: 'RATE_LIMITED', reason: 'SIGN_IN_GUARD' });
    expect(calls(stack, IAM_ROUTE)).toBe(4);
  });

  it('another user is unaffected, and the IAM never locks the guarded user (it saw 3 failures, not 5)', async () => {
    await seen(USER);
    for (let i = 1; i <= 5; i++) await signIn(byName(USER, `wrong-${i}`));
    expect(calls(stack, IAM_ROUTE)).toBe(3);

    // The other user reaches the IAM (which asks for its second factor).
    const other = await signIn(byName(OTHER_USER, OTHER_USER.password));
    expect(other.errors?.[0]?.extensions.code).toBe('MFA_REQUIRED');
    expect(calls(stack, IAM_ROUTE)).toBe(4);

    // The IAM itself has not locked the guarded user: asked directly, it accepts the password.
    const res = await fetch(`${stack.emulator.url}/v3/auth/tokens?nocatalog=true`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        auth: { identity: { methods: ['password'], password: { user: { name: USER.name, domain: { name: USER.domain.name }, password: USER.password } } } },
      }),
    });
    expect(res.status).toBe(201);
    expect(res.headers.get('x-subject-token')).toBeTruthy();
  });

  // A user can be named three ways (name + domain name, name + domain id, user id); the IAM
  // counts them all as one user. The guard must too, or a client can spend 3 attempts per
  // form and lock the user at the IAM (5 failures) — what the guard exists to prevent. The
  // gateway learns the forms from the user's tokens: here the user has signed in once before.
  it('naming a known user differently (name+domainName, name+domainId, userId) does not get past the guard', async () => {
    expect((await signIn(byName(USER, USER.password))).errors).toBeUndefined();
    stack.emulator.reset();
    const forms = [
      { userName: USER.name, domainName: USER.domain.name },
      { userName: USER.name, domainId: USER.domain.id },
      { userId: USER.id },
    ];
    for (const form of forms) for (let i = 0; i < 3; i++) await signIn({ ...form, password: `wrong-${i}` });
    expect(calls(stack, IAM_ROUTE)).toBeLessThan(5);
    const r = await signIn(byName(USER, USER.password));
    expect(r.errors?.[0]?.extensions.reason).not.toBe('USER_LOCKED');
  });

  it('once the IAM answers that the user is locked, the gateway stops calling it for that user', async () => {
    for (let i = 0; i < 5; i++) {
      await fetch(`${stack.emulator.url}/v3/auth/tokens`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ auth: { identity: { methods: ['password'], password: { user: { id: USER.id, password: `direct-wrong-${i}` } } } } }),
      });
    }
    stack.emulator.state.resetCounters();
    const first = await signIn(byName(USER, USER.password));
    expect(first.errors?.[0]?.extensions.reason).toBe('USER_LOCKED');
    const second = await signIn(byName(USER, USER.password));
    expect(second.errors?.[0]?.extensions.reason).toBe('SIGN_IN_GUARD');
    expect(calls(stack, IAM_ROUTE)).toBe(1);
  });

  it('once the window has passed since the failures, the user reaches the IAM again (the clock moved, not slept)', async () => {
    await seen(USER);
    for (let i = 1; i <= 3; i++) await signIn(byName(USER, `wrong-${i}`));
    clock.advance(58_000);
    const still = await signIn(byName(USER, USER.password));
    expect(still.errors?.[0]?.extensions).toMatchObject({ code: 'RATE_LIMITED', reason: 'SIGN_IN_GUARD' });
    expect(still.errors![0]!.extensions.retryAfterSeconds).toBeLessThanOrEqual(2);
    expect(calls(stack, IAM_ROUTE)).toBe(3);

    clock.advance(2_000);
    const ok = await signIn(byName(USER, USER.password));
    expect(ok.errors).toBeUndefined();
    expect(ok.data.createIamToken.value).toBeTruthy();
    expect(calls(stack, IAM_ROUTE)).toBe(4);
  });

  it('a success clears the count', async () => {
    await seen(USER);
    for (let i = 0; i < 2; i++) await signIn(byName(USER, `wrong-${i}`));
    const ok = await signIn(byName(USER, USER.password));
    expect(ok.errors).toBeUndefined();
    for (let i = 0; i < 2; i++) expect((await signIn(byName(USER, `wrong-again-${i}`))).errors?.[0]?.extensions.code).toBe('UNAUTHENTICATED');
    expect(calls(stack, IAM_ROUTE)).toBe(5);
  });
});
