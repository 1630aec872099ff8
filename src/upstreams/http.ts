// The upstream client: what the gateway does around each call. Retries only where the caller
// says a call is safe to repeat, with backoff, Retry-After and a per-origin retry budget, within
// the retry deadline; each origin has a circuit breaker and bounded concurrency; every call gets
// a span, a duration metric, a log line and an entry in the request's call record. The wire
// itself is transport.ts. Errors come out as the typed UpstreamError family.
import type { Logger } from 'pino';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import {
  upstreamErrorFromResponse,
  upstreamTimeout,
  upstreamUnavailable,
  upstreamUnreadable,
  type UpstreamError,
  type UpstreamService,
} from '../errors.ts';
import type { GatewayConfig } from '../config.ts';
import type { GatewayMetrics } from '../observability/metrics.ts';
import { CircuitBreaker, RetryBudget, Semaphore } from './resilience.ts';
import { Connection, headerValue } from './transport.ts';
import { withSpan } from '../observability/spans.ts';

export interface UpstreamRequest {
  service: UpstreamService;
  /** Short operation name for logs and metrics, e.g. `listAuthenticationTokens`. */
  operation: string;
  baseUrl: string;
  method: 'GET' | 'POST';
  /** Path below baseUrl's own path; segments must already be encoded. */
  path: string;
  query?: Record<string, string | undefined>;
  headers?: Record<string, string>;
  body?: unknown;
  /** Statuses that count as success. */
  ok: readonly number[];
  /** Retry connection errors, 429, 502, 503, 504 (reads only). */
  retry?: boolean;
  /** Strings that must never appear in an error message (the caller's secrets). */
  secrets?: readonly (string | undefined)[];
  /** The GraphQL request's deadline. */
  signal?: AbortSignal;
  logger?: Logger;
  /** Where this request's upstream calls are recorded (for the per-operation log line). */
  calls?: UpstreamCallRecord[];
  /** The request presents a token to the IAM (rescoping): changes what a 404 means (src/errors.ts). */
  presentedToken?: boolean;
}

/** What `call` validates a body with: a zod schema, or a hand-written reader with zod's `safeParse` shape. */
export interface BodyReader<T> {
  safeParse(body: unknown): { success: true; data: T } | { success: false; error: { issues: readonly { path: readonly PropertyKey[] }[] } };
}

/** What a request's upstream calls share: its logger, its deadline, its call record. */
export type RequestScope = Pick<UpstreamRequest, 'logger' | 'signal' | 'calls'>;

export interface UpstreamCallRecord {
  upstream: UpstreamService;
  operation: string;
  status: number;
  upstreamRequestId: string | undefined;
  ms: number;
}

export interface UpstreamResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  requestId: string | undefined;
  json: unknown;
}

type HttpOptions = GatewayConfig['upstream'];

const RETRY_STATUSES = new Set([429, 502, 503, 504]);
const MAX_RETRY_AFTER_MS = 30_000;

interface Origin {
  connection: Connection;
  breaker: CircuitBreaker;
  limiter: Semaphore;
  budget: RetryBudget;
}

/** One attempt's outcome: an answer (any status), or a failure and whether a retry may cure it. */
type Attempt = { ok: true; response: UpstreamResponse } | { ok: false; error: UpstreamError; retryable: boolean };

export class UpstreamHttp {
  readonly #origins = new Map<string, Origin>();

  constructor(
    readonly options: HttpOptions,
    private readonly metrics?: GatewayMetrics,
  ) {}

  private origin(service: UpstreamService, origin: string): Origin {
    let o = this.#origins.get(origin);
    if (!o) {
      o = {
        connection: new Connection(origin, this.options),
        breaker: new CircuitBreaker(this.options.circuit.failureThreshold, this.options.circuit.resetMs, (state) =>
          this.metrics?.setCircuit(service, origin, state),
        ),
        limiter: new Semaphore(this.options.maxConcurrency, this.options.maxQueue),
        budget: new RetryBudget(this.options.retry.budgetRatio),
      };
      this.metrics?.setCircuit(service, origin, 'closed');
      this.#origins.set(origin, o);
    }
    return o;
  }

  /** Circuit states by origin, for /ready and operators. */
  circuits(): Record<string, string> {
    return Object.fromEntries([...this.#origins].map(([k, o]) => [k, o.breaker.state]));
  }

  async close(): Promise<void> {
    await Promise.all([...this.#origins.values()].map((o) => o.connection.close()));
    this.#origins.clear();
  }

  /** Sends the request and validates the body; an unexpected shape is UPSTREAM_ERROR. */
  async call<T>(req: UpstreamRequest, schema: BodyReader<T>): Promise<{ data: T; response: UpstreamResponse }> {
    const response = await this.request(req);
    const parsed = schema.safeParse(response.json);
    if (!parsed.success) {
      const where = parsed.error.issues[0]?.path.map(String).join('.') || 'body';
      throw upstreamUnreadable(req.service, response.status, response.requestId, `unexpected shape at ${where}`);
    }
    return { data: parsed.data, response };
  }

  /** Sends the request, retrying where allowed; resolves only with an `ok` status. */
  async request(req: UpstreamRequest): Promise<UpstreamResponse> {
    const { attempts, baseMs, deadlineMs } = this.options.retry;
    const deadline = Date.now() + deadlineMs;
    const base = parsedBase(req.baseUrl);
    const origin = this.origin(req.service, base.origin);
    origin.budget.deposit();
    for (let attempt = 1; ; attempt++) {
      const outcome = await this.#admitted(req, origin, base);
      let failure: UpstreamError;
      let retryAfter: number | undefined;
      if (outcome.ok) {
        const res = outcome.response;
        if (req.ok.includes(res.status)) return res;
        failure = upstreamErrorFromResponse(req.service, res, { secrets: req.secrets, presentedToken: req.presentedToken });
        if (!RETRY_STATUSES.has(res.status)) throw failure;
        retryAfter = retryAfterMs(res.headers['retry-after']);
      } else {
        if (!outcome.retryable) throw outcome.error;
        failure = outcome.error;
      }
      const wait = backoff(attempt, baseMs, retryAfter);
      if (!req.retry || attempt >= attempts || Date.now() + wait > deadline || req.signal?.aborted) throw failure;
      if (!origin.budget.withdraw()) {
        this.metrics?.upstreamRejected.inc({ upstream: req.service, reason: 'retry_budget' });
        throw failure;
      }
      this.metrics?.upstreamRetries.inc({ upstream: req.service, operation: req.operation });
      req.logger?.warn({ upstream: req.service, operation: req.operation, err: failure.message, attempt, waitMs: Math.round(wait) }, 'upstream retry');
      await sleep(wait, req.signal);
    }
  }

  /** One attempt, if the origin's circuit breaker and concurrency limit admit it; its outcome feeds the breaker. */
  async #admitted(req: UpstreamRequest, origin: Origin, base: BaseUrl): Promise<Attempt> {
    if (req.signal?.aborted) return { ok: false, error: upstreamTimeout(req.service, 'request deadline reached'), retryable: false };
    if (!origin.breaker.tryAcquire()) {
      this.metrics?.upstreamRejected.inc({ upstream: req.service, reason: 'circuit_open' });
      const error = upstreamUnavailable(req.service, `circuit open after repeated failures; next probe in ${Math.ceil(origin.breaker.retryInMs() / 1000)} s`);
      return { ok: false, error, retryable: false };
    }
    const release = await origin.limiter.acquire(req.signal);
    if (!release) {
      origin.breaker.release();
      this.metrics?.upstreamRejected.inc({ upstream: req.service, reason: 'queue_full' });
      const error = req.signal?.aborted
        ? upstreamTimeout(req.service, 'request deadline reached')
        : upstreamUnavailable(req.service, 'too many concurrent calls to this upstream');
      return { ok: false, error, retryable: false };
    }
    try {
      const outcome = await this.#observed(req, origin.connection, base);
      if (outcome.ok) {
        if (outcome.response.status >= 500) origin.breaker.failure();
        else origin.breaker.success();
      } else {
        const code = outcome.error.code;
        if (code === 'UPSTREAM_UNAVAILABLE' || (code === 'UPSTREAM_TIMEOUT' && !req.signal?.aborted)) origin.breaker.failure();
        else if (code === 'UPSTREAM_ERROR') origin.breaker.success(); // it answered, just badly
        else origin.breaker.release();
      }
      return outcome;
    } catch (e) {
      origin.breaker.release();
      throw e;
    } finally {
      release();
    }
  }

  /** One exchange on the wire, with its span, duration metric, call record and log line; decodes the JSON. */
  async #observed(req: UpstreamRequest, connection: Connection, base: BaseUrl): Promise<Attempt> {
    const query = req.query ? queryString(req.query) : '';
    const path = `${base.path}${req.path}${query ? `?${query}` : ''}`;
    const started = performance.now();
    // Span attributes carry no query string, header or body: nothing secret.
    return withSpan(
      `${req.service} ${req.operation}`,
      () => ({
        kind: SpanKind.CLIENT,
        attributes: {
          'http.request.method': req.method,
          'server.address': base.hostname,
          'server.port': base.port,
          'url.path': `${base.path}${req.path}`,
          'upstream.service': req.service,
          'upstream.operation': req.operation,
        },
      }),
      async (span) => {
        let status = 'error';
        try {
          const answer = await connection.exchange(req, path);
          if (!answer.ok) {
            status = answer.label;
            span.setStatus({ code: SpanStatusCode.ERROR, message: answer.error.code });
            return answer;
          }
          status = String(answer.status);
          const { requestId } = answer;
          span.setAttribute('http.response.status_code', answer.status);
          if (requestId) span.setAttribute('upstream.request_id', requestId);
          // A log line is a synchronous write, so answers with an `ok` status are
          // logged at debug; the others (what an operator looks for) stay at info. Every call,
          // with its upstream request id, is also listed on the operation's log line.
          const record = {
            upstream: req.service,
            operation: req.operation,
            status: answer.status,
            upstreamRequestId: requestId,
            ms: Math.round(performance.now() - started),
          };
          if (req.calls && req.calls.length < 50) req.calls.push(record);
          const level = req.ok.includes(answer.status) ? 'debug' : 'info';
          if (req.logger?.isLevelEnabled(level)) req.logger[level]({ ...record, method: req.method }, 'upstream call');
          let json: unknown;
          if (answer.body.length > 0) {
            try {
              json = JSON.parse(answer.body);
            } catch {
              if (req.ok.includes(answer.status)) {
                const error = upstreamUnreadable(req.service, answer.status, requestId, 'malformed JSON');
                span.setStatus({ code: SpanStatusCode.ERROR, message: error.code });
                return { ok: false, error, retryable: false };
              }
              json = undefined; // an error page that is not JSON still maps by status
            }
          }
          if (answer.status >= 400) span.setStatus({ code: SpanStatusCode.ERROR });
          return { ok: true, response: { status: answer.status, headers: answer.headers, requestId, json } };
        } catch (e) {
          span.setStatus({ code: SpanStatusCode.ERROR, message: 'error' });
          throw e;
        } finally {
          this.metrics?.upstreamDuration.observe(
            { upstream: req.service, operation: req.operation, status },
            (performance.now() - started) / 1000,
          );
          span.end();
        }
      },
    );
  }
}

interface BaseUrl {
  origin: string;
  hostname: string;
  port: number;
  /** The base URL's path without its trailing slash. */
  path: string;
}

const baseUrls = new Map<string, BaseUrl>();

/** Configured base URLs are few: each is parsed once, not on every call. */
function parsedBase(baseUrl: string): BaseUrl {
  let b = baseUrls.get(baseUrl);
  if (!b) {
    const u = new URL(baseUrl);
    b = {
      origin: u.origin,
      hostname: u.hostname,
      port: Number(u.port) || (u.protocol === 'https:' ? 443 : 80),
      path: u.pathname.replace(/\/$/, ''),
    };
    if (baseUrls.size < 100) baseUrls.set(baseUrl, b);
  }
  return b;
}

function queryString(query: Record<string, string | undefined>): string {
  let out = '';
  for (const k in query) {
    const v = query[k];
    if (v !== undefined) out += `${out ? '&' : ''}${encodeURIComponent(k)}=${encodeURIComponent(v)}`;
  }
  return out;
}

/** `Retry-After` in seconds or as an HTTP date → milliseconds (capped). */
export function retryAfterMs(v: string | string[] | undefined, now = Date.now()): number | undefined {
  const s = headerValue(v)?.trim();
  if (!s) return undefined;
  const ms = /^\d+$/.test(s) ? Number(s) * 1000 : Date.parse(s) - now;
  return Number.isFinite(ms) ? Math.min(Math.max(ms, 0), MAX_RETRY_AFTER_MS) : undefined;
}

/** Full-jitter exponential backoff; Retry-After, when given, is the floor. */
function backoff(attempt: number, baseMs: number, retryAfter: number | undefined): number {
  const jittered = Math.random() * baseMs * 2 ** (attempt - 1);
  return Math.max(jittered, retryAfter ?? 0);
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  // Resolves early on abort: the next attempt then fails fast with the deadline error.
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
  });
}
