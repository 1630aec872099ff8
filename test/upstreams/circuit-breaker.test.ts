// The circuit breaker on its own, on a clock the test moves: when it opens, how long it stays
// open, the one probe of half-open, and what the probe's outcome does. The same breaker inside
// the gateway (/ready, /metrics, fail-fast errors): test/hardening/resilience.test.ts.
import { describe, expect, it } from 'vitest';
import { CircuitBreaker, type CircuitState } from '../../src/upstreams/resilience.ts';

/** A breaker of 3 failures and a 500 ms cool-down, on a clock that moves only when told. */
function breaker() {
  let t = 1_000_000;
  const changes: CircuitState[] = [];
  const b = new CircuitBreaker(3, 500, (s) => changes.push(s), () => t);
  const fail = (n: number) => {
    for (let i = 0; i < n; i++) {
      expect(b.tryAcquire()).toBe(true);
      b.failure();
    }
  };
  return { b, changes, fail, advance: (ms: number) => void (t += ms) };
}

describe('CircuitBreaker', () => {
  it('starts closed and lets every call through', () => {
    const { b, changes } = breaker();
    expect(b.state).toBe('closed');
    for (let i = 0; i < 10; i++) expect(b.tryAcquire()).toBe(true);
    expect(b.retryInMs()).toBe(0);
    expect(changes).toEqual([]);
  });

  it('opens on the 3rd consecutive failure, not before; while open it refuses every call', () => {
    const { b, changes, fail } = breaker();
    fail(2);
    expect(b.state).toBe('closed');
    fail(1);
    expect(b.state).toBe('open');
    expect(changes).toEqual(['open']);
    expect(b.tryAcquire()).toBe(false);
    expect(b.tryAcquire()).toBe(false);
    expect(b.retryInMs()).toBe(500);
  });

  it('a success in between resets the count: failures must be consecutive', () => {
    const { b, fail } = breaker();
    fail(2);
    b.success();
    fail(2);
    expect(b.state).toBe('closed');
    fail(1);
    expect(b.state).toBe('open');
  });

  it('stays open for exactly the cool-down: open at 499 ms, half-open at 500 ms', () => {
    const { b, changes, fail, advance } = breaker();
    fail(3);
    advance(200);
    expect(b.retryInMs()).toBe(300);
    advance(299);
    expect(b.state).toBe('open');
    expect(b.tryAcquire()).toBe(false);
    expect(b.retryInMs()).toBe(1);
    advance(1);
    expect(b.state).toBe('half-open');
    expect(b.retryInMs()).toBe(0);
    expect(changes).toEqual(['open', 'half-open']);
  });

  it('half-open lets one probe through at a time', () => {
    const { b, fail, advance } = breaker();
    fail(3);
    advance(500);
    expect(b.tryAcquire()).toBe(true);
    expect(b.tryAcquire()).toBe(false);
    advance(10_000); // however long the probe takes
    expect(b.tryAcquire()).toBe(false);
  });

  it('a probe that succeeds closes it', () => {
    const { b, changes, fail, advance } = breaker();
    fail(3);
    advance(500);
    expect(b.tryAcquire()).toBe(true);
    b.success();
    expect(b.state).toBe('closed');
    expect(changes).toEqual(['open', 'half-open', 'closed']);
    expect(b.tryAcquire()).toBe(true);
    expect(b.tryAcquire()).toBe(true);
  });

  it('a probe that fails opens it again at once (one failure, not three), for a whole new cool-down', () => {
    const { b, changes, fail, advance } = breaker();
    fail(3);
    advance(700);
    expect(b.tryAcquire()).toBe(true);
    b.failure();
    expect(b.state).toBe('open');
    expect(changes).toEqual(['open', 'half-open', 'open']);
    expect(b.retryInMs()).toBe(500);
    advance(499);
    expect(b.tryAcquire()).toBe(false);
    advance(1);
    expect(b.tryAcquire()).toBe(true);
  });

  it('a probe released without an outcome (e.g. cancelled) frees the slot for another probe, still half-open', () => {
    const { b, fail, advance } = breaker();
    fail(3);
    advance(500);
    expect(b.tryAcquire()).toBe(true);
    b.release();
    expect(b.state).toBe('half-open');
    expect(b.tryAcquire()).toBe(true);
    expect(b.tryAcquire()).toBe(false);
  });

  it('after closing again, it takes 3 fresh failures to reopen', () => {
    const { b, fail, advance } = breaker();
    fail(3);
    advance(500);
    b.tryAcquire();
    b.success();
    fail(2);
    expect(b.state).toBe('closed');
    fail(1);
    expect(b.state).toBe('open');
  });
});
