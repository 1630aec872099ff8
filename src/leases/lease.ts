// Credential leases: a subscription that hands out a role credential at once and then a fresh
// one before each runs out, for as long as the client listens (the contract's "Credential leases").
//
// A Lease is the subscription's event stream (an AsyncIterator the transport pulls from), and
// its renewal loop:
//   - the first event carries a credential minted at once; its failure, whatever it is, ends the lease;
//   - the next mint is planned at about two thirds of the remaining lifetime of the credential the
//     upstream actually returned (the earlier of `accessCredentialExpiresAt` and the STS token's
//     `Expiration`), a little earlier by a random jitter, so that leases opened together drift apart;
//   - a failure that may pass (UPSTREAM_UNAVAILABLE, UPSTREAM_TIMEOUT, RATE_LIMITED, UPSTREAM_ERROR
//     with a 5xx) is followed by a new mint after a backoff, for as long as the current credential
//     is valid; any other failure, or the current credential running out, ends the lease with one
//     final error (the field then resolves to that error) and the end of the stream;
//   - each mint is one call, never repeated by the upstream client, with REQUEST_DEADLINE_MS of
//     its own; `return()` (the client unsubscribed or went away) or the client's signal stops the
//     timers and aborts the call in flight at once.
// LeaseRegistry counts the leases of each caller (MAX_LEASES_PER_CALLER) and ends them all at shutdown.
import type { Logger } from 'pino';
import { GatewayError, UpstreamError, upstreamUnusable } from '../errors.ts';
import type { GatewayMetrics } from '../observability/metrics.ts';
import type { CloudAccountRoleCredential } from '../upstreams/idaas/schemas.ts';

type AccessCredential = CloudAccountRoleCredential['accessCredential'];

/** What one mint hands out (the mutation's payload). */
export interface Minted<Role = unknown> {
  cloudAccountRole: Role;
  accessCredential: AccessCredential;
}

export interface LeaseEvent<Role = unknown> extends Minted<Role> {
  /** Delivered events, from 1. */
  sequence: number;
  /** When the next renewal is planned. */
  renewsAt: Date;
}

/** What the transport pulls: an event, or the lease's final error (the field's resolver throws it). */
export type LeaseItem<Role = unknown> = LeaseEvent<Role> | GatewayError;

export interface LeaseOptions<Role> {
  registry: LeaseRegistry;
  metrics: GatewayMetrics;
  logger: Logger;
  /** The client went away. */
  clientSignal?: AbortSignal;
  /** Each mint's own deadline (REQUEST_DEADLINE_MS). */
  deadlineMs: number;
  /** Who the lease counts against (MAX_LEASES_PER_CALLER); may fail (UNAUTHENTICATED), which ends the lease. */
  callerKey(): Promise<string>;
  /** One mint, authorized and audited like the mutation's; `signal` aborts it. */
  mint(signal: AbortSignal): Promise<Minted<Role>>;
  /** For tests. */
  random?: () => number;
}

/** Renewals are planned at this share of the remaining lifetime... */
export const RENEW_AT = 2 / 3;
/** ...made up to this share of it earlier, at random. */
export const RENEW_JITTER = 0.1;
/** Never sooner than this after the previous mint, whatever the upstream answered. */
const MIN_RENEW_DELAY_MS = 500;

/** Failures that may pass, after which a new mint is tried while the current credential is valid. */
export function mayPass(error: GatewayError): boolean {
  switch (error.code) {
    case 'UPSTREAM_UNAVAILABLE':
    case 'UPSTREAM_TIMEOUT':
    case 'RATE_LIMITED':
      return true;
    case 'UPSTREAM_ERROR':
      return error instanceof UpstreamError && (error.upstream.status ?? 0) >= 500;
    default:
      return false;
  }
}

/** When the credential really expires: the earlier of the upstream's two expirations. */
export function effectiveExpiry(c: AccessCredential): number {
  let t = c.expiresAt.getTime();
  for (const sts of [c.alibabaCloudStsToken, c.awsStsToken]) if (sts) t = Math.min(t, sts.expiration.getTime());
  return t;
}

/**
 * The wait before the `failures`-th new mint: exponential from a twentieth of the renewal window
 * (0.1-2 s), capped at a quarter of it (at most a minute), half of it random.
 */
export function backoffMs(failures: number, windowMs: number, random = Math.random): number {
  const base = Math.min(2_000, Math.max(100, windowMs / 20));
  const cap = Math.min(60_000, Math.max(base, windowMs / 4));
  return Math.min(cap, base * 2 ** (failures - 1)) * (0.5 + 0.5 * random());
}

export const shuttingDown = () =>
  new GatewayError('The gateway is shutting down: subscribe again (another replica will serve the lease).', 'UPSTREAM_UNAVAILABLE', {
    reason: 'SHUTTING_DOWN',
  });

const unexpected = () => new GatewayError('Unexpected error.', 'INTERNAL_SERVER_ERROR');

type EndReason = 'client' | 'error' | 'shutdown';

export class Lease<Role = unknown> implements AsyncIterableIterator<LeaseItem<Role>> {
  readonly #o: LeaseOptions<Role>;
  readonly #stop = new AbortController();
  readonly #random: () => number;
  #queue: LeaseItem<Role>[] = [];
  #waiting: ((r: IteratorResult<LeaseItem<Role>>) => void) | undefined;
  #stopped = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #sequence = 0;
  #release: (() => void) | undefined;
  #onClientAbort: (() => void) | undefined;
  /** Resolves once the transport has taken the end of the stream (or left). */
  readonly drained: Promise<void>;
  #drained!: () => void;

  constructor(options: LeaseOptions<Role>) {
    this.#o = options;
    this.#random = options.random ?? Math.random;
    this.drained = new Promise((resolve) => (this.#drained = resolve));
    const client = options.clientSignal;
    if (client) {
      if (client.aborted) {
        this.#end(undefined, 'client');
        return;
      }
      this.#onClientAbort = () => this.#end(undefined, 'client');
      client.addEventListener('abort', this.#onClientAbort, { once: true });
    }
    if (!options.registry.add(this)) {
      this.#end(shuttingDown(), 'shutdown');
      return;
    }
    void this.#start();
  }

  /** Aborts with the lease: every call in flight and every wait. */
  get signal(): AbortSignal {
    return this.#stop.signal;
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<LeaseItem<Role>>> {
    const item = this.#queue.shift();
    if (item) return Promise.resolve({ value: item, done: false });
    if (this.#stopped) return Promise.resolve(this.#done());
    return new Promise((resolve) => (this.#waiting = resolve));
  }

  /** The client unsubscribed or went away: stops at once. */
  return(): Promise<IteratorResult<LeaseItem<Role>>> {
    this.#end(undefined, 'client');
    this.#queue = [];
    return Promise.resolve(this.#done());
  }

  throw(): Promise<IteratorResult<LeaseItem<Role>>> {
    return this.return();
  }

  /** Ends the lease with a final error event (shutdown). */
  end(error: GatewayError, reason: EndReason): void {
    this.#end(error, reason);
  }

  #done(): IteratorResult<LeaseItem<Role>> {
    this.#drained();
    return { value: undefined, done: true };
  }

  #push(item: LeaseItem<Role>): void {
    const waiting = this.#waiting;
    if (waiting) {
      this.#waiting = undefined;
      waiting({ value: item, done: false });
    } else this.#queue.push(item);
  }

  /** Stops everything once; with an error, that error is the last event. */
  #end(error: GatewayError | undefined, reason: EndReason): void {
    if (this.#stopped) return;
    this.#stopped = true;
    if (error) this.#push(error);
    this.#stop.abort(error ?? new DOMException('the lease ended', 'AbortError'));
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#onClientAbort) this.#o.clientSignal?.removeEventListener('abort', this.#onClientAbort);
    this.#release?.();
    this.#release = undefined;
    this.#o.registry.delete(this);
    this.#o.metrics.leasesEnded.inc({ reason });
    this.#o.logger.info({ reason, events: this.#sequence, ...(error ? { code: error.code } : {}) }, 'credential lease ended');
    // A transport waiting for the next event gets the end of the stream (the error, if any, was just handed to it).
    const waiting = this.#waiting;
    if (waiting) {
      this.#waiting = undefined;
      waiting(this.#done());
    }
  }

  #fail(e: unknown): void {
    if (this.#stopped) return;
    let error: GatewayError;
    if (e instanceof GatewayError) error = e;
    else {
      this.#o.logger.error({ kind: (e as Error)?.name ?? typeof e }, 'credential lease: unexpected error');
      error = unexpected();
    }
    this.#end(error, 'error');
  }

  async #start(): Promise<void> {
    try {
      const key = await this.#o.callerKey();
      if (this.#stopped) return;
      this.#release = this.#o.registry.acquire(key);
      this.#o.logger.info('credential lease started');
      const first = await this.#mintOnce();
      if (this.#stopped) return;
      this.#deliver(first, undefined);
    } catch (e) {
      this.#fail(e);
    }
  }

  /** One mint with its own deadline, aborted at once when the lease stops. */
  async #mintOnce(): Promise<Minted<Role>> {
    const call = new AbortController();
    const timer = setTimeout(() => call.abort(new DOMException('renewal deadline reached', 'TimeoutError')), this.#o.deadlineMs);
    const onStop = () => call.abort(this.#stop.signal.reason);
    this.#stop.signal.addEventListener('abort', onStop, { once: true });
    try {
      return await this.#o.mint(call.signal);
    } finally {
      clearTimeout(timer);
      this.#stop.signal.removeEventListener('abort', onStop);
    }
  }

  /** Hands out a credential and plans its renewal. `replacing`: the expiry of the one it replaces. */
  #deliver(minted: Minted<Role>, replacing: number | undefined): void {
    const now = Date.now();
    const expiresAt = effectiveExpiry(minted.accessCredential);
    const remaining = expiresAt - now;
    if (remaining <= 0) throw upstreamUnusable('idaas', 'the credential it issued has already expired');
    const delay = Math.max(MIN_RENEW_DELAY_MS, remaining * RENEW_AT * (1 - RENEW_JITTER * this.#random()));
    const renewsAt = new Date(now + delay);
    if (replacing !== undefined) {
      this.#o.metrics.leaseRenewals.inc({ outcome: 'renewed' });
      this.#o.metrics.leaseRenewalMargin.observe((replacing - now) / 1000);
    }
    this.#sequence += 1;
    this.#o.logger.debug(
      { sequence: this.#sequence, expiresAt: new Date(expiresAt).toISOString(), renewsAt: renewsAt.toISOString() },
      'credential lease: credential delivered',
    );
    // `expiresAt` says when the credential really expires (the earlier of the two).
    const accessCredential = expiresAt === minted.accessCredential.expiresAt.getTime() ? minted.accessCredential : { ...minted.accessCredential, expiresAt: new Date(expiresAt) };
    this.#push({ ...minted, accessCredential, sequence: this.#sequence, renewsAt });
    this.#timer = setTimeout(() => void this.#renew(expiresAt), delay);
  }

  async #renew(expiresAt: number): Promise<void> {
    this.#timer = undefined;
    const windowMs = expiresAt - Date.now();
    for (let failures = 1; ; failures++) {
      let minted: Minted<Role>;
      try {
        minted = await this.#mintOnce();
      } catch (e) {
        if (this.#stopped) {
          this.#o.metrics.leaseRenewals.inc({ outcome: 'aborted' });
          return;
        }
        const error = e instanceof GatewayError ? e : undefined;
        const wait = backoffMs(failures, windowMs, this.#random);
        if (!error || !mayPass(error) || Date.now() + wait >= expiresAt) {
          this.#o.metrics.leaseRenewals.inc({ outcome: 'failed' });
          return this.#fail(e);
        }
        this.#o.metrics.leaseRenewals.inc({ outcome: 'retried' });
        this.#o.logger.warn({ code: error.code, failures, waitMs: Math.round(wait) }, 'credential lease: renewal failed, trying again');
        await this.#sleep(wait);
        if (this.#stopped) return;
        continue;
      }
      if (this.#stopped) {
        this.#o.metrics.leaseRenewals.inc({ outcome: 'aborted' });
        return;
      }
      try {
        this.#deliver(minted, expiresAt);
      } catch (e) {
        this.#o.metrics.leaseRenewals.inc({ outcome: 'failed' });
        this.#fail(e);
      }
      return;
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#stop.signal.removeEventListener('abort', onStop);
        resolve();
      }, ms);
      const onStop = () => resolve();
      this.#stop.signal.addEventListener('abort', onStop, { once: true });
    });
  }
}

/** The open leases: counted per caller (MAX_LEASES_PER_CALLER), and ended together at shutdown. */
export class LeaseRegistry {
  readonly #leases = new Set<Lease<any>>();
  readonly #byCaller = new Map<string, number>();
  #closed = false;

  constructor(
    readonly maxPerCaller: number,
    private readonly metrics: GatewayMetrics,
  ) {}

  /** Open leases (those still resolving their caller included). */
  get size(): number {
    return this.#leases.size;
  }

  /** Leases counted against a caller key now. */
  countFor(key: string): number {
    return this.#byCaller.get(key) ?? 0;
  }

  /** False once shutting down. */
  add(lease: Lease<any>): boolean {
    if (this.#closed) return false;
    this.#leases.add(lease);
    return true;
  }

  delete(lease: Lease<any>): void {
    this.#leases.delete(lease);
  }

  /** Counts a lease against its caller; RATE_LIMITED beyond the limit. Returns its release. */
  acquire(key: string): () => void {
    const n = this.#byCaller.get(key) ?? 0;
    if (n >= this.maxPerCaller) {
      throw new GatewayError(
        `At most ${this.maxPerCaller} credential leases may be open at a time per caller: end one before opening another.`,
        'RATE_LIMITED',
        { reason: 'LEASE_LIMIT', limit: this.maxPerCaller },
      );
    }
    this.#byCaller.set(key, n + 1);
    this.metrics.leasesActive.inc();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.#byCaller.get(key) ?? 1) - 1;
      if (left > 0) this.#byCaller.set(key, left);
      else this.#byCaller.delete(key);
      this.metrics.leasesActive.dec();
    };
  }

  /**
   * Shutdown: refuses new leases, ends every open one with a final error (UPSTREAM_UNAVAILABLE,
   * reason SHUTTING_DOWN) and resolves once their transports have taken it, or after `waitMs`.
   */
  async endAll(waitMs: number): Promise<void> {
    this.#closed = true;
    const leases = [...this.#leases];
    for (const lease of leases) lease.end(shuttingDown(), 'shutdown');
    if (!leases.length) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.all(leases.map((l) => l.drained)),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, waitMs);
        timer.unref?.();
      }),
    ]);
    clearTimeout(timer);
  }
}
