// One undici Pool per upstream origin, every timeout explicit (undici's defaults are 300 s),
// a response size cap, bodies always consumed, retries only where the caller says a call is
// safe to repeat. Errors come out as the typed UpstreamError family.
import { Pool } from 'undici';
import type { Logger } from 'pino';
import type { z } from 'zod';
import {
  upstreamErrorFromResponse,
  upstreamTimeout,
  upstreamUnavailable,
  upstreamUnreadable,
  UpstreamError,
  type UpstreamService,
} from '../errors.ts';
import type { GatewayConfig } from '../config.ts';

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
  signal?: AbortSignal;
  logger?: Logger;
  /** A service-specific reading of an error answer (e.g. IAM's MFA receipt); falls back to the status map. */
  errorFor?: (res: UpstreamResponse) => UpstreamError | undefined;
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

export class UpstreamHttp {
  readonly #pools = new Map<string, Pool>();

  constructor(readonly options: HttpOptions) {}

  pool(origin: string): Pool {
    let pool = this.#pools.get(origin);
    if (!pool) {
      pool = new Pool(origin, {
        connections: this.options.connections,
        connectTimeout: this.options.connectTimeoutMs,
        headersTimeout: this.options.timeoutMs,
        bodyTimeout: this.options.timeoutMs,
        keepAliveTimeout: 30_000,
        keepAliveMaxTimeout: 60_000,
      });
      this.#pools.set(origin, pool);
    }
    return pool;
  }

  async close(): Promise<void> {
    await Promise.all([...this.#pools.values()].map((p) => p.close()));
    this.#pools.clear();
  }

  /** Sends the request and validates the body; an unexpected shape is UPSTREAM_ERROR. */
  async call<S extends z.ZodType>(req: UpstreamRequest, schema: S): Promise<{ data: z.output<S>; response: UpstreamResponse }> {
    const response = await this.request(req);
    const parsed = schema.safeParse(response.json);
    if (!parsed.success) {
      const where = parsed.error.issues[0]?.path.join('.') || 'body';
      throw upstreamUnreadable(req.service, response.status, response.requestId, `unexpected shape at ${where}`);
    }
    return { data: parsed.data, response };
  }

  /** Sends the request, retrying where allowed; resolves only with an `ok` status. */
  async request(req: UpstreamRequest): Promise<UpstreamResponse> {
    const { attempts, baseMs, deadlineMs } = this.options.retry;
    const deadline = Date.now() + deadlineMs;
    for (let attempt = 1; ; attempt++) {
      try {
        const res = await this.once(req);
        if (req.ok.includes(res.status)) return res;
        const err = req.errorFor?.(res) ?? upstreamErrorFromResponse(req.service, res.status, res.json, res.requestId, req.secrets);
        if (!req.retry || !RETRY_STATUSES.has(res.status)) throw err;
        const wait = backoff(attempt, baseMs, retryAfterMs(res.headers['retry-after']));
        if (attempt >= attempts || Date.now() + wait > deadline) throw err;
        req.logger?.warn({ upstream: req.service, operation: req.operation, status: res.status, attempt, waitMs: wait }, 'upstream retry');
        await sleep(wait, req.signal);
      } catch (e) {
        if (!(e instanceof RetryableConnectionError)) throw e;
        const wait = backoff(attempt, baseMs, undefined);
        if (!req.retry || attempt >= attempts || Date.now() + wait > deadline) throw e.error;
        req.logger?.warn({ upstream: req.service, operation: req.operation, err: e.error.message, attempt, waitMs: wait }, 'upstream retry');
        await sleep(wait, req.signal);
      }
    }
  }

  private async once(req: UpstreamRequest): Promise<UpstreamResponse> {
    const base = new URL(req.baseUrl);
    const query = req.query
      ? new URLSearchParams(Object.entries(req.query).filter((e): e is [string, string] => e[1] !== undefined)).toString()
      : '';
    const path = `${base.pathname.replace(/\/$/, '')}${req.path}${query ? `?${query}` : ''}`;
    const started = performance.now();
    let res;
    try {
      res = await this.pool(base.origin).request({
        method: req.method,
        path,
        headers: {
          accept: 'application/json',
          ...(req.body !== undefined ? { 'content-type': 'application/json;charset=utf8' } : {}),
          ...req.headers,
        },
        body: req.body !== undefined ? JSON.stringify(req.body) : undefined,
        signal: req.signal,
      });
    } catch (e) {
      throw classifyTransportError(req.service, e);
    }
    const requestId = headerValue(res.headers['x-request-id']) ?? headerValue(res.headers['x-acs-request-id']);
    const text = await readCapped(req.service, res, this.options.maxResponseBytes, requestId);
    req.logger?.info(
      {
        upstream: req.service,
        operation: req.operation,
        method: req.method,
        status: res.statusCode,
        upstreamRequestId: requestId,
        ms: Math.round(performance.now() - started),
      },
      'upstream call',
    );
    let json: unknown;
    if (text.length > 0) {
      try {
        json = JSON.parse(text);
      } catch {
        if (req.ok.includes(res.statusCode)) throw upstreamUnreadable(req.service, res.statusCode, requestId, 'malformed JSON');
        json = undefined; // an error page that is not JSON still maps by status
      }
    }
    return { status: res.statusCode, headers: res.headers, requestId, json };
  }
}

/** A connection-level failure that a retry may cure. */
class RetryableConnectionError extends Error {
  constructor(readonly error: UpstreamError) {
    super(error.message);
  }
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
    case 'AbortError':
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
      if ((e as Error)?.name === 'AbortError') return upstreamTimeout(service, 'request deadline reached');
      return upstreamUnavailable(service, 'transport error');
  }
}

async function readCapped(
  service: UpstreamService,
  res: { statusCode: number; body: AsyncIterable<Buffer> & { destroy(err?: Error): void } },
  max: number,
  requestId: string | undefined,
): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of res.body) {
      size += chunk.length;
      if (size > max) {
        res.body.destroy();
        throw upstreamUnreadable(service, res.statusCode, requestId, `response larger than ${max} bytes`);
      }
      chunks.push(chunk);
    }
  } catch (e) {
    if (e instanceof UpstreamError) throw e;
    const err = classifyTransportError(service, e);
    throw err instanceof RetryableConnectionError ? err.error : err;
  }
  return Buffer.concat(chunks).toString('utf8');
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
  // Resolves early on abort: the next attempt then fails fast with the abort reason.
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
  });
}
