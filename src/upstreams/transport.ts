// The connection to one upstream origin: an undici Pool with every timeout explicit (undici's
// defaults are 300 s), and the exchange of one request for one whole answer, with a size cap.
// It knows HTTP and undici and nothing of retries, breakers or logging: a failure comes back as
// a value, with whether a retry may cure it, and the client (http.ts) decides what to do.
import { Pool, type Dispatcher } from 'undici';
import {
  upstreamTimeout,
  upstreamUnavailable,
  upstreamUnreadable,
  type UpstreamError,
  type UpstreamService,
} from '../errors.ts';
import type { GatewayConfig } from '../config.ts';

export type TransportOptions = Pick<GatewayConfig['upstream'], 'connections' | 'connectTimeoutMs' | 'timeoutMs' | 'maxResponseBytes'>;

export type Headers = Record<string, string | string[] | undefined>;

/** What the exchange reads from the client's request (an `UpstreamRequest` fits as it is). */
export interface TransportRequest {
  service: UpstreamService;
  method: 'GET' | 'POST';
  headers?: Record<string, string>;
  /** Sent as JSON. */
  body?: unknown;
  signal?: AbortSignal;
}

/** The upstream answered: any status, the whole body. */
export interface Answer {
  ok: true;
  status: number;
  headers: Headers;
  requestId: string | undefined;
  /** The whole body, decoded as UTF-8. */
  body: string;
}

/** No usable answer. */
export interface TransportFailure {
  ok: false;
  error: UpstreamError;
  /** A retry may cure it: the request never reached the upstream, or its connection was lost before any answer. */
  retryable: boolean;
  /** The duration metric's status label: the answer's status once it started, else timeout / aborted / connection_error. */
  label: string;
}

export type Exchange = Answer | TransportFailure;

const TOO_LARGE = new Error('response too large');

export class Connection {
  readonly #pool: Pool;
  readonly #maxBytes: number;

  constructor(origin: string, options: TransportOptions) {
    this.#maxBytes = options.maxResponseBytes;
    this.#pool = new Pool(origin, {
      connections: options.connections,
      connectTimeout: options.connectTimeoutMs,
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
      keepAliveTimeout: 30_000,
      keepAliveMaxTimeout: 60_000,
    });
  }

  close(): Promise<void> {
    return this.#pool.close();
  }

  /**
   * One request (`path` is the full path with its query) and its whole answer, through undici's
   * dispatch API, because `pool.request()` wraps every answer in a Readable stream and binds
   * each callback to an AsyncResource; this collects the chunks straight from the parser, with
   * the size cap applied as they arrive. Timeouts are still undici's (headersTimeout, bodyTimeout).
   * Never rejects.
   */
  exchange(req: TransportRequest, path: string): Promise<Exchange> {
    const { signal } = req;
    const maxBytes = this.#maxBytes;
    return new Promise((resolve) => {
      let controller: Dispatcher.DispatchController | undefined;
      let status = 0;
      let headers: Headers = {};
      const chunks: Buffer[] = [];
      let size = 0;
      let settled = false;
      const onAbort = () => controller?.abort(signal!.reason);
      const settle = (result: Exchange) => {
        if (settled) return;
        settled = true;
        signal?.removeEventListener('abort', onAbort);
        resolve(result);
      };
      const handler: Dispatcher.DispatchHandler = {
        onRequestStart(c) {
          controller = c;
          if (signal?.aborted) c.abort(signal.reason);
        },
        onResponseStart(_c, statusCode, responseHeaders) {
          status = statusCode;
          headers = responseHeaders;
        },
        onResponseData(c, chunk) {
          size += chunk.length;
          if (size > maxBytes) c.abort(TOO_LARGE);
          else chunks.push(chunk);
        },
        onResponseEnd() {
          if (settled) return;
          settle({
            ok: true,
            status,
            headers,
            requestId: requestIdOf(headers),
            body: chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks, size).toString('utf8'),
          });
        },
        onResponseError(_c, error) {
          if (settled) return;
          settle(status ? brokenAnswer(req.service, status, headers, error, maxBytes) : failure(req.service, error));
        },
      };
      try {
        // Serialised inside the try: a body that JSON cannot represent becomes a failure value too.
        const body = req.body !== undefined ? JSON.stringify(req.body) : undefined;
        if (signal?.aborted) return settle(failure(req.service, signal.reason));
        signal?.addEventListener('abort', onAbort, { once: true });
        const dispatchHeaders = {
          accept: 'application/json',
          ...(req.body !== undefined ? { 'content-type': 'application/json;charset=utf8' } : {}),
          ...req.headers,
        };
        this.#pool.dispatch({ method: req.method, path, headers: dispatchHeaders, body }, handler);
      } catch (e) {
        // A pool that is closing refuses at once.
        settle(failure(req.service, e));
      }
    });
  }
}

/** The answer's status and headers arrived, then its body failed: never retried, whatever the cause. */
function brokenAnswer(service: UpstreamService, status: number, headers: Headers, cause: unknown, maxBytes: number): TransportFailure {
  const error =
    cause === TOO_LARGE
      ? upstreamUnreadable(service, status, requestIdOf(headers), `response larger than ${maxBytes} bytes`)
      : failure(service, cause).error;
  return { ok: false, error, retryable: false, label: String(status) };
}

/** The one map from undici's errors (or the signal's reason) to the gateway's, before any answer. */
function failure(service: UpstreamService, e: unknown): TransportFailure {
  const code = (e as { code?: string })?.code;
  switch (code) {
    case 'UND_ERR_CONNECT_TIMEOUT':
      // Nothing was sent yet.
      return { ok: false, error: upstreamTimeout(service, 'connect timeout'), retryable: true, label: 'timeout' };
    case 'UND_ERR_HEADERS_TIMEOUT':
      return { ok: false, error: upstreamTimeout(service, 'no response headers in time'), retryable: false, label: 'timeout' };
    case 'UND_ERR_BODY_TIMEOUT':
      return { ok: false, error: upstreamTimeout(service, 'response body stalled'), retryable: false, label: 'timeout' };
    case 'UND_ERR_ABORTED':
      return { ok: false, error: upstreamTimeout(service, 'request deadline reached'), retryable: false, label: 'aborted' };
    case 'ECONNREFUSED':
    case 'ECONNRESET':
    case 'EPIPE':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EHOSTUNREACH':
    case 'UND_ERR_SOCKET':
    case 'UND_ERR_CLOSED':
      return {
        ok: false,
        error: upstreamUnavailable(service, code === 'UND_ERR_SOCKET' ? 'connection lost' : code),
        retryable: true,
        label: 'connection_error',
      };
    default: {
      const name = (e as Error)?.name;
      const deadline = name === 'AbortError' || name === 'TimeoutError';
      return {
        ok: false,
        error: deadline ? upstreamTimeout(service, 'request deadline reached') : upstreamUnavailable(service, 'transport error'),
        retryable: false,
        // An aborted signal's reason is a DOMException, whose code is a number.
        label: String(code ?? '').includes('TIMEOUT') ? 'timeout' : name === 'AbortError' ? 'aborted' : 'connection_error',
      };
    }
  }
}

function requestIdOf(headers: Headers): string | undefined {
  return headerValue(headers['x-request-id']) ?? headerValue(headers['x-acs-request-id']) ?? headerValue(headers['x-openstack-request-id']);
}

export function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}
