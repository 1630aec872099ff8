// Per-origin protections: a circuit breaker (fail fast while an upstream is down, probe it
// when the cool-down ends), bounded concurrency with a bounded queue, and a retry budget so
// that retries can never multiply the load on an upstream that is already struggling.

export type CircuitState = 'closed' | 'open' | 'half-open';

export class CircuitBreaker {
  #state: CircuitState = 'closed';
  #failures = 0;
  #openedAt = 0;
  #probing = false;

  constructor(
    private readonly failureThreshold: number,
    private readonly resetMs: number,
    private readonly onChange: (state: CircuitState) => void = () => {},
    private readonly now: () => number = Date.now,
  ) {}

  get state(): CircuitState {
    if (this.#state === 'open' && this.now() - this.#openedAt >= this.resetMs) this.#set('half-open');
    return this.#state;
  }

  /** Whether a call may go out now; in half-open, only one probe at a time. */
  tryAcquire(): boolean {
    const state = this.state;
    if (state === 'closed') return true;
    if (state === 'open' || this.#probing) return false;
    this.#probing = true;
    return true;
  }

  /** Milliseconds until the breaker lets a probe through. */
  retryInMs(): number {
    return this.#state === 'open' ? Math.max(0, this.resetMs - (this.now() - this.#openedAt)) : 0;
  }

  success(): void {
    this.#probing = false;
    this.#failures = 0;
    if (this.#state !== 'closed') this.#set('closed');
  }

  failure(): void {
    this.#probing = false;
    this.#failures += 1;
    if (this.#state === 'half-open' || this.#failures >= this.failureThreshold) {
      this.#openedAt = this.now();
      this.#failures = 0;
      this.#set('open');
    }
  }

  /** A call that neither proved nor disproved the upstream's health (e.g. cancelled). */
  release(): void {
    this.#probing = false;
  }

  #set(state: CircuitState): void {
    this.#state = state;
    this.onChange(state);
  }
}

/** At most `max` calls in flight; at most `maxQueue` waiting; beyond that, refuse at once. */
export class Semaphore {
  #inFlight = 0;
  readonly #queue: (() => void)[] = [];

  constructor(
    private readonly max: number,
    private readonly maxQueue: number,
  ) {}

  get inFlight(): number {
    return this.#inFlight;
  }

  /** Resolves with a release function, or false when the queue is full. */
  async acquire(signal?: AbortSignal): Promise<(() => void) | false> {
    if (this.#inFlight < this.max) {
      this.#inFlight += 1;
      return this.#releaser();
    }
    if (this.#queue.length >= this.maxQueue) return false;
    return new Promise((resolve) => {
      const grant = () => {
        signal?.removeEventListener('abort', onAbort);
        this.#inFlight += 1;
        resolve(this.#releaser());
      };
      const onAbort = () => {
        const i = this.#queue.indexOf(grant);
        if (i >= 0) this.#queue.splice(i, 1);
        resolve(false);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#queue.push(grant);
    });
  }

  #releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#inFlight -= 1;
      this.#queue.shift()?.();
    };
  }
}

/**
 * Retries may add at most `ratio` of the first-attempt traffic (plus a small reserve), as
 * gRPC's and Finagle's retry budgets do: a burst of failures cannot become a retry storm.
 */
export class RetryBudget {
  #tokens: number;

  constructor(
    private readonly ratio: number,
    private readonly reserve = 10,
  ) {
    this.#tokens = reserve;
  }

  /** Every first attempt earns a fraction of a retry. */
  deposit(): void {
    this.#tokens = Math.min(this.reserve + 100 * this.ratio, this.#tokens + this.ratio);
  }

  /** Spends one retry when the budget has it. */
  withdraw(): boolean {
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}
