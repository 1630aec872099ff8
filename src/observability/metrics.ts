// Prometheus metrics (prom-client), one registry per gateway so tests and embedders can run
// several side by side. Labels are bounded: operation names are checked and capped.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { CircuitState } from '../upstreams/resilience.ts';

const CIRCUIT_VALUE: Record<CircuitState, number> = { closed: 0, 'half-open': 1, open: 2 };
const MAX_OPERATION_NAMES = 200;

export class GatewayMetrics {
  readonly registry = new Registry();
  readonly #names = new Set<string>();

  readonly operations = new Counter({
    name: 'graphql_operations_total',
    help: 'GraphQL operations by name, type and outcome (ok, error, partial).',
    labelNames: ['operation', 'type', 'outcome'] as const,
    registers: [this.registry],
  });

  readonly operationDuration = new Histogram({
    name: 'graphql_operation_duration_seconds',
    help: 'GraphQL operation duration, from parse to response.',
    labelNames: ['operation', 'type'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  readonly errors = new Counter({
    name: 'graphql_errors_total',
    help: 'GraphQL errors by code.',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });

  readonly upstreamDuration = new Histogram({
    name: 'upstream_request_duration_seconds',
    help: 'Upstream HTTP calls by upstream, operation and status (or the transport failure).',
    labelNames: ['upstream', 'operation', 'status'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });

  readonly upstreamRetries = new Counter({
    name: 'upstream_retries_total',
    help: 'Retried upstream calls by upstream and operation.',
    labelNames: ['upstream', 'operation'] as const,
    registers: [this.registry],
  });

  readonly upstreamRejected = new Counter({
    name: 'upstream_rejected_total',
    help: 'Upstream calls the gateway did not make: circuit open, concurrency queue full, retry budget spent.',
    labelNames: ['upstream', 'reason'] as const,
    registers: [this.registry],
  });

  readonly circuitState = new Gauge({
    name: 'upstream_circuit_state',
    help: 'Circuit breaker state per upstream origin: 0 closed, 1 half-open, 2 open.',
    labelNames: ['upstream', 'origin'] as const,
    registers: [this.registry],
  });

  readonly rateLimited = new Counter({
    name: 'rate_limited_total',
    help: 'Requests refused by the gateway’s own limits, by kind (client, iam_guard).',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });

  /** With REDIS_URL (src/shared/redis.ts); never set without it. */
  readonly redisUnavailable = new Gauge({
    name: 'redis_unavailable',
    help: 'With REDIS_URL: 1 while this replica cannot use Redis and keeps its shared state in its own memory, else 0.',
    registers: [this.registry],
  });

  readonly redisFallbacks = new Counter({
    name: 'redis_fallbacks_total',
    help: 'With REDIS_URL: decisions this replica took from its own memory because Redis was unavailable, by store (rate_limit, sign_in_guard).',
    labelNames: ['store'] as const,
    registers: [this.registry],
  });

  readonly policyDecisions = new Counter({
    name: 'policy_decisions_total',
    help: 'Broker mode: Cedar policy decisions by action and decision (allow, deny).',
    labelNames: ['action', 'decision'] as const,
    registers: [this.registry],
  });

  readonly auditFailures = new Counter({
    name: 'audit_write_failures_total',
    help: 'Broker mode: audit lines that could not be written (each refused a mint).',
    registers: [this.registry],
  });

  readonly leasesActive = new Gauge({
    name: 'credential_leases_active',
    help: 'Credential leases (subscriptions) open now.',
    registers: [this.registry],
  });

  readonly leaseRenewals = new Counter({
    name: 'credential_lease_renewals_total',
    help: 'Credential lease renewals by outcome: renewed, retried (a failure that may pass; a new mint follows), failed (the lease ended), aborted (the client left or the gateway stopped during the call).',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  readonly leaseRenewalMargin = new Histogram({
    name: 'credential_lease_renewal_margin_seconds',
    help: 'Time the replaced credential still had to live when its renewal was delivered (0 or less: late).',
    buckets: [0, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1200, 3600, 14400],
    registers: [this.registry],
  });

  readonly leasesEnded = new Counter({
    name: 'credential_leases_ended_total',
    help: 'Credential leases ended, by reason: client (unsubscribed or disconnected), error (a final error event), shutdown.',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  constructor(defaultMetrics = true) {
    if (defaultMetrics) collectDefaultMetrics({ register: this.registry });
  }

  /** A safe, bounded label for a client-chosen operation name. */
  operationLabel(name: string | null | undefined): string {
    if (!name) return 'anonymous';
    if (!/^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(name)) return 'invalid';
    if (this.#names.has(name)) return name;
    if (this.#names.size >= MAX_OPERATION_NAMES) return 'other';
    this.#names.add(name);
    return name;
  }

  setCircuit(upstream: string, origin: string, state: CircuitState): void {
    this.circuitState.set({ upstream, origin }, CIRCUIT_VALUE[state]);
  }
}
