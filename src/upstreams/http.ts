// One undici Pool per upstream origin, every timeout explicit (undici's defaults are 300 s),
// a response size cap, bodies always consumed, retries only where the caller says a call is
// safe to repeat. Each origin has a circuit breaker, bounded concurrency and a retry budget.
// Errors come out as the typed UpstreamError family.
import { Pool, type Dispatcher } from 'undici';
import type { Logger } from 'pino';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import {
  upstreamErrorFromResponse,
  upstreamTimeout,
  upstreamUnavailable,
  upstreamUnreadable,
  UpstreamError,
  type UpstreamService,
} from '../errors.ts';
import type { GatewayConfig } from '../config.ts';
import type { GatewayMetrics } from '../observability/metrics.ts';
import { CircuitBreaker, RetryBudget, Semaphore } from './resilience.ts';
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
  /** A service-specific reading of an error answer (e.g. IAM's MFA receipt); falls back to the status map. */
  errorFor?: (res: UpstreamResponse) => UpstreamError | undefined;
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
  pool: Pool;
  breaker: CircuitBreaker;
  limiter: Semaphore;
  budget: RetryBudget;
}

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
        pool: new Pool(origin, {
          connections: this.options.connections,
          connectTimeout: this.options.connectTimeoutMs,
          headersTimeout: this.options.timeoutMs,
          bodyTimeout: this.options.timeoutMs,
          keepAliveTimeout: 30_000,
          keepAliveMaxTimeout: 60_000,
        }),
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
    await Promise.all([...this.#origins.values()].map((o) => o.pool.close()));
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
      let failure: UpstreamError;
      let retryAfter: number | undefined;
      try {
        const res = await this.guarded(req, origin, base);
        if (req.ok.includes(res.status)) return res;
        failure = req.errorFor?.(res) ?? upstreamErrorFromResponse(req.service, res.status, res.json, res.requestId, req.secrets);
        if (!RETRY_STATUSES.has(res.status)) throw failure;
        retryAfter = retryAfterMs(res.headers['retry-after']);
      } catch (e) {
        if (!(e instanceof RetryableConnectionError)) throw e;
        failure = e.error;
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

  /** One attempt behind the origin's circuit breaker and concurrency limit. */
  private async guarded(req: UpstreamRequest, origin: Origin, base: BaseUrl): Promise<UpstreamResponse> {
    if (req.signal?.aborted) throw upstreamTimeout(req.service, 'request deadline reached');
    if (!origin.breaker.tryAcquire()) {
      this.metrics?.upstreamRejected.inc({ upstream: req.service, reason: 'circuit_open' });
      throw upstreamUnavailable(req.service, `circuit open after repeated failures; next probe in ${Math.ceil(origin.breaker.retryInMs() / 1000)} s`);
    }
    const release = await origin.limiter.acquire(req.signal);
    if (!release) {
      origin.breaker.release();
      this.metrics?.upstreamRejected.inc({ upstream: req.service, reason: 'queue_full' });
      throw req.signal?.aborted
        ? upstreamTimeout(req.service, 'request deadline reached')
        : upstreamUnavailable(req.service, 'too many concurrent calls to this upstream');
    }
    try {
      const res = await this.once(req, origin.pool, base);
      if (res.status >= 500) origin.breaker.failure();
      else origin.breaker.success();
      return res;
    } catch (e) {
      const err = e instanceof RetryableConnectionError ? e.error : e;
      const code = err instanceof UpstreamError ? err.code : undefined;
      if (code === 'UPSTREAM_UNAVAILABLE' || (code === 'UPSTREAM_TIMEOUT' && !req.signal?.aborted)) origin.breaker.failure();
      else if (code === 'UPSTREAM_ERROR') origin.breaker.success(); // it answered, just badly
      else origin.breaker.release();
      throw e;
    } finally {
      release();
    }
  }

  private async once(req: UpstreamRequest, pool: Pool, base: BaseUrl): Promise<UpstreamResponse> {
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
          let res: Exchange;
          try {
            res = await exchange(
              pool,
              {
                method: req.method,
                path,
                headers: {
                  accept: 'application/json',
                  ...(req.body !== undefined ? { 'content-type': 'application/json;charset=utf8' } : {}),
                  ...req.headers,
                },
                body: req.body !== undefined ? JSON.stringify(req.body) : undefined,
              },
              req.signal,
              this.options.maxResponseBytes,
            );
          } catch (e) {
            if (e instanceof BodyFailure) {
              // The answer started (a status and headers) and then broke off: not retried.
              status = String(e.statusCode);
              const requestId = requestIdOf(e.headers);
              if (e.cause === TOO_LARGE) {
                throw upstreamUnreadable(req.service, e.statusCode, requestId, `response larger than ${this.options.maxResponseBytes} bytes`);
              }
              const err = classifyTransportError(req.service, e.cause);
              throw err instanceof RetryableConnectionError ? err.error : err;
            }
            const err = classifyTransportError(req.service, e);
            status = (err instanceof RetryableConnectionError ? err.error : err) instanceof UpstreamError ? transportLabel(e) : 'error';
            throw err;
          }
          status = String(res.statusCode);
          const requestId = requestIdOf(res.headers);
          const text = res.body;
          span.setAttribute('http.response.status_code', res.statusCode);
          if (requestId) span.setAttribute('upstream.request_id', requestId);
          // Performance: one line per upstream call at info doubled the per-request logging cost
          // (a synchronous write each); answers with an `ok` status are logged at debug, the
          // others (what an operator looks for) stay at info.
          // Every call, with its upstream request id, is also listed on the operation's log line.
          const record = {
            upstream: req.service,
            operation: req.operation,
            status: res.statusCode,
            upstreamRequestId: requestId,
            ms: Math.round(performance.now() - started),
          };
          if (req.calls && req.calls.length < 50) req.calls.push(record);
          req.logger?.[req.ok.includes(res.statusCode) ? 'debug' : 'info']({ ...record, method: req.method }, 'upstream call');
          let json: unknown;
          if (text.length > 0) {
            try {
              json = JSON.parse(text);
            } catch {
              if (req.ok.includes(res.statusCode)) throw upstreamUnreadable(req.service, res.statusCode, requestId, 'malformed JSON');
              json = undefined; // an error page that is not JSON still maps by status
            }
          }
          if (res.statusCode >= 400) span.setStatus({ code: SpanStatusCode.ERROR });
          return { status: res.statusCode, headers: res.headers, requestId, json };
        } catch (e) {
          span.setStatus({ code: SpanStatusCode.ERROR, message: e instanceof UpstreamError ? e.code : 'error' });
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

/** A connection-level failure that a retry may cure. */
class RetryableConnectionError extends Error {
  constructor(readonly error: UpstreamError) {
    super(error.message);
  }
}

function transportLabel(e: unknown): string {
  // DOMException (an aborted signal) has a numeric code.
  const code = String((e as { code?: unknown })?.code ?? '');
  if (code.includes('TIMEOUT')) return 'timeout';
  if (code === 'UND_ERR_ABORTED' || (e as Error)?.name === 'AbortError') return 'aborted';
  return 'connection_error';
}

function classifyTransportError(service: UpstreamService, e: unknown): Error {
  const code = (e as { code?: string })?.code;
  switch (code) {
    case 'UND_ERR_CONNECT_TIMEOUT':
      return new RetryableConnectionError(upstreamTimeout(service, 'connect timeout'));
    case 'UND_ERR_HEADERS_TIMEOUT':
      return upstreamTimeout(service, 'no response headers in time');
    case 'UND_ERR_BODY_TIMEOUT':
      return upstreamTimeout(service, 'response body stalled');
    case 'UND_ERR_ABORTED':
      return upstreamTimeout(service, 'request deadline reached');
    case 'ECONNREFUSED':
    case 'ECONNRESET':
    case 'EPIPE':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EHOSTUNREACH':
    case 'UND_ERR_SOCKET':
    case 'UND_ERR_CLOSED':
      return new RetryableConnectionError(upstreamUnavailable(service, code === 'UND_ERR_SOCKET' ? 'connection lost' : code));
    default:
      if ((e as Error)?.name === 'AbortError' || (e as Error)?.name === 'TimeoutError') {
        return upstreamTimeout(service, 'request deadline reached');
      }
      return upstreamUnavailable(service, 'transport error');
  }
}

interface Exchange {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  /** The whole body, decoded as UTF-8. */
  body: string;
}

/** The answer's status and headers arrived, then its body failed (`cause`). */
class BodyFailure {
  constructor(
    readonly statusCode: number,
    readonly headers: Exchange['headers'],
    readonly cause: unknown,
  ) {}
}

const TOO_LARGE = new Error('response too large');

/**
 * One request and its whole answer, through undici's dispatch API. Performance: `pool.request()`
 * wraps every answer in a Readable stream (read here through an async iterator) and binds each
 * callback to an AsyncResource; this collects the chunks straight from the parser, with the
 * size cap applied as they arrive. Timeouts are still undici's (headersTimeout, bodyTimeout).
 * Rejects with undici's error (or the signal's reason) before the answer starts, and with a
 * BodyFailure after.
 */
function exchange(
  pool: Pool,
  options: { method: 'GET' | 'POST'; path: string; headers: Record<string, string>; body: string | undefined },
  signal: AbortSignal | undefined,
  maxBytes: number,
): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    let controller: Dispatcher.DispatchController | undefined;
    let statusCode = 0;
    let headers: Exchange['headers'] = {};
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const onAbort = () => controller?.abort(signal!.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    const settle = () => {
      settled = true;
      signal?.removeEventListener('abort', onAbort);
    };
    const handler: Dispatcher.DispatchHandler = {
      onRequestStart(c) {
        controller = c;
        if (signal?.aborted) c.abort(signal.reason);
      },
      onResponseStart(_c, status, responseHeaders) {
        statusCode = status;
        headers = responseHeaders;
      },
      onResponseData(c, chunk) {
        size += chunk.length;
        if (size > maxBytes) c.abort(TOO_LARGE);
        else chunks.push(chunk);
      },
      onResponseEnd() {
        if (settled) return;
        settle();
        resolve({ statusCode, headers, body: chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks, size).toString('utf8') });
      },
      onResponseError(_c, error) {
        if (settled) return;
        settle();
        reject(statusCode ? new BodyFailure(statusCode, headers, error) : error);
      },
    };
    try {
      pool.dispatch(options, handler);
    } catch (e) {
      // A pool that is closing refuses at once.
      settle();
      reject(e);
    }
  });
}

function requestIdOf(headers: Exchange['headers']): string | undefined {
  return headerValue(headers['x-request-id']) ?? headerValue(headers['x-acs-request-id']) ?? headerValue(headers['x-openstack-request-id']);
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

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
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
