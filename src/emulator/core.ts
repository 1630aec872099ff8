// What the route modules and the server (index.ts) share: the contract a route is written
// against (Route, EmuRequest, EmuResponse, Dialect, EmuError), the per-emulator state (counters,
// pending faults, clock offset), and the node:http helpers the server reads and answers with.
// Routing and applying faults happen in index.ts; what a fault is, in faults.ts.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import type { Fault } from './faults.ts';

/** Thrown by handlers; rendered in the route's own error dialect. */
export class EmuError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
    /** Extra top-level fields merged into the dialect's body. */
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

export interface EmuRequest {
  method: string;
  path: string;
  params: string[];
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  requestId: string;
  /** Milliseconds since the epoch on the emulator's clock (can be advanced by tests). */
  now: number;
  rawBody: Buffer;
  /** Parses the body as JSON; a bad body is a 400 in the route's dialect. */
  json(): unknown;
}

export interface EmuResponse {
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
}

export type Dialect = {
  /** Header that carries the request id. */
  requestIdHeader: string;
  /** Renders an error body. */
  error(err: EmuError, requestId: string): unknown;
};

export interface Route {
  /** Stable name used by counters and faults, e.g. `idaas.listAuthenticationTokens`. */
  name: string;
  method: string;
  /**
   * Matched against the raw, still percent-encoded pathname, so an encoded `/` inside an id
   * cannot split a segment; the captures are percent-decoded into `params`.
   */
  pattern: RegExp;
  dialect: Dialect;
  handle(req: EmuRequest): EmuResponse | Promise<EmuResponse>;
}

export interface RouteCounters {
  requests: number;
  inFlight: number;
  maxInFlight: number;
}

export class EmulatorState {
  readonly counters = new Map<string, RouteCounters>();
  faults: Fault[] = [];
  clockOffsetMs = 0;

  now(): number {
    return Date.now() + this.clockOffsetMs;
  }

  counter(name: string): RouteCounters {
    let c = this.counters.get(name);
    if (!c) {
      c = { requests: 0, inFlight: 0, maxInFlight: 0 };
      this.counters.set(name, c);
    }
    return c;
  }

  snapshot(): Record<string, RouteCounters> {
    return Object.fromEntries([...this.counters].map(([k, v]) => [k, { ...v }]));
  }

  /** Takes the first fault matching the route, consuming one of its `times`. */
  takeFault(route: string): Fault | undefined {
    const i = this.faults.findIndex((f) => f.route === route || f.route === '*');
    if (i < 0) return undefined;
    const fault = this.faults[i]!;
    if (fault.times !== undefined) {
      fault.times -= 1;
      if (fault.times <= 0) this.faults.splice(i, 1);
    }
    return fault;
  }

  resetCounters(): void {
    this.counters.clear();
  }
}

const MAX_BODY = 1024 * 1024;

export function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    // An oversized body is drained and dropped, so the client reads our 413 instead of a reset.
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= MAX_BODY) chunks.push(c);
    });
    req.on('end', () => {
      if (size > MAX_BODY) {
        reject(new EmuError(413, 'request_entity_too_large', 'The request body is too large.', { connection: 'close' }));
      } else resolve(Buffer.concat(chunks));
    });
    req.on('error', reject);
  });
}

export function send(res: ServerResponse, r: EmuResponse, requestIdHeader: string, requestId: string): void {
  const headers: Record<string, string> = { [requestIdHeader]: requestId, ...r.headers };
  if (r.body === undefined) {
    res.writeHead(r.status, headers);
    res.end();
    return;
  }
  const text = typeof r.body === 'string' ? r.body : JSON.stringify(r.body);
  headers['content-type'] ??= 'application/json;charset=UTF-8';
  headers['content-length'] = String(Buffer.byteLength(text));
  res.writeHead(r.status, headers);
  res.end(text);
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function newRequestId(): string {
  return randomUUID().toUpperCase();
}

export function buildRequest(
  req: IncomingMessage,
  url: URL,
  params: string[],
  rawBody: Buffer,
  requestId: string,
  now: number,
): EmuRequest {
  return {
    method: req.method ?? 'GET',
    path: url.pathname,
    params,
    query: url.searchParams,
    headers: req.headers,
    requestId,
    now,
    rawBody,
    json() {
      if (rawBody.length === 0) throw new EmuError(400, 'invalid_request', 'The request body is empty.');
      try {
        return JSON.parse(rawBody.toString('utf8')) as unknown;
      } catch {
        throw new EmuError(400, 'invalid_request', 'The request body is not valid JSON.');
      }
    },
  };
}
