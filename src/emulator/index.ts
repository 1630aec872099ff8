// startEmulator({ port: 0 }) → { url, close }: a plain node:http server that stands in for
// Alibaba Cloud IDaaS PAM and Huawei / Orange Business Cloud IAM.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  EmuError,
  EmulatorState,
  buildRequest,
  newRequestId,
  readBody,
  send,
  sleep,
  type Route,
  type RouteCounters,
} from './core.ts';
import { checkFault, describeFaultError, faultSchema, type Fault } from './faults.ts';
import { idaasDialect, idaasRoutes } from './idaas.ts';
import { iamDialect, iamRoutes, IamDirectory } from './iam.ts';
import { TokenRegistry, oauthRoutes } from './oauth.ts';
import { OidcIssuer, controlOidcToken, type OidcApi } from './oidc.ts';

export type { RouteCounters } from './core.ts';
export type { Fault } from './faults.ts';

/** Every path of the control API starts with this; no upstream path can. */
export const CONTROL_PREFIX = '/__emulator';

export interface EmulatorOptions {
  port?: number;
  host?: string;
  /** Added to every upstream answer (benchmarks use 0 and 20 ms). */
  latencyMs?: number;
  /** Serve the control API (faults, counters, clock). On by default. */
  control?: boolean;
  /** Lifetime of access tokens issued by the IDaaS token endpoint (default 3600). */
  accessTokenTtlSeconds?: number;
  /**
   * STS credentials (obtainAccessCredential) live the shorter of the asked duration and this
   * (EMULATOR_STS_TTL_SECONDS), so that lease renewals show within seconds. Default: as asked.
   */
  stsTtlSeconds?: number;
}

export interface Emulator {
  url: string;
  state: EmulatorState;
  /** Adds a fault; see `Fault`. Throws on one the control route would answer 400. */
  inject(fault: Fault): void;
  /** Counters per route name. */
  counters(): Record<string, RouteCounters>;
  /** Clears faults, counters, lockouts and the clock offset. */
  reset(): void;
  /** Moves the emulator's clock forward (lockouts, expiry). */
  advanceClock(ms: number): void;
  /** Forgets every access token the IDaaS token endpoint issued: PAM then answers 401 invalid_token. */
  revokeAccessTokens(): void;
  /** Caps the lifetime of the STS credentials issued from now on (undefined: as asked); reset() restores the option's. */
  setStsTtlSeconds(seconds: number | undefined): void;
  close(): Promise<void>;
  /** The demo OIDC issuer of the gateway's callers (broker mode). */
  oidc: OidcApi;
}

export async function startEmulator(options: EmulatorOptions = {}): Promise<Emulator> {
  const state = new EmulatorState();
  const iam = new IamDirectory(state);
  const issuedTokens = new TokenRegistry(options.accessTokenTtlSeconds);
  const sts = { ttlSeconds: options.stsTtlSeconds || undefined };
  let url = '';
  const oidc = new OidcIssuer(state, () => url);
  const routes: Route[] = [...idaasRoutes(state, issuedTokens, sts), ...oauthRoutes(issuedTokens), ...iamRoutes(iam), ...oidc.routes()];
  const latencyMs = options.latencyMs ?? 0;
  const control = options.control ?? true;

  const reset = () => {
    state.faults = [];
    state.resetCounters();
    state.clockOffsetMs = 0;
    iam.reset();
    issuedTokens.reset();
    sts.ttlSeconds = options.stsTtlSeconds || undefined;
  };

  async function handleControl(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const reply = (status: number, body?: unknown) =>
      send(res, { status, body }, 'x-request-id', newRequestId());
    const sub = url.pathname.slice(CONTROL_PREFIX.length);
    try {
      if (req.method === 'GET' && sub === '/counters') return reply(200, state.snapshot());
      if (req.method === 'GET' && sub === '/faults') return reply(200, state.faults);
      if (req.method === 'POST' && sub === '/faults') {
        const parsed = faultSchema.safeParse(JSON.parse((await readBody(req)).toString('utf8')));
        if (!parsed.success) {
          return reply(400, { error: describeFaultError(parsed.error) });
        }
        state.faults.push(parsed.data);
        return reply(201, parsed.data);
      }
      if (req.method === 'DELETE' && sub === '/faults') {
        state.faults = [];
        return reply(204);
      }
      if (req.method === 'POST' && sub === '/clock') {
        const { advanceMs } = JSON.parse((await readBody(req)).toString('utf8')) as { advanceMs?: number };
        if (typeof advanceMs !== 'number' || !Number.isFinite(advanceMs)) return reply(400, { error: 'advanceMs must be a number' });
        state.clockOffsetMs += advanceMs;
        return reply(200, { now: new Date(state.now()).toISOString() });
      }
      if (req.method === 'POST' && sub === '/oidc/token') {
        const { status, body } = await controlOidcToken(oidc, JSON.parse((await readBody(req)).toString('utf8')));
        return reply(status, body);
      }
      if (req.method === 'POST' && sub === '/idaas/revoke-access-tokens') {
        issuedTokens.revokeAll();
        return reply(204);
      }
      if (req.method === 'POST' && sub === '/idaas/access-token-ttl') {
        const { seconds } = JSON.parse((await readBody(req)).toString('utf8')) as { seconds?: unknown };
        if (!Number.isInteger(seconds) || (seconds as number) < 1) return reply(400, { error: 'seconds must be a positive integer' });
        issuedTokens.setTtlSeconds(seconds as number);
        return reply(200, { seconds });
      }
      if (req.method === 'POST' && sub === '/idaas/sts-ttl') {
        const { seconds } = JSON.parse((await readBody(req)).toString('utf8')) as { seconds?: unknown };
        if (seconds !== null && (!Number.isInteger(seconds) || (seconds as number) < 1)) {
          return reply(400, { error: 'seconds must be a positive integer, or null for as asked' });
        }
        sts.ttlSeconds = (seconds as number | null) ?? undefined;
        return reply(200, { seconds });
      }
      if (req.method === 'POST' && sub === '/reset') {
        reset();
        return reply(204);
      }
      return reply(404, { error: 'unknown control route' });
    } catch {
      return reply(400, { error: 'the control request body is not valid JSON' });
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://emulator.invalid');
    if (url.pathname.startsWith(CONTROL_PREFIX)) {
      if (control) return handleControl(req, res, url);
    }
    let matched: Route | undefined;
    let params: string[] = [];
    let pathMatched = false;
    for (const route of routes) {
      const m = route.pattern.exec(url.pathname);
      if (!m) continue;
      pathMatched = true;
      if (route.method !== req.method) continue;
      matched = route;
      params = m.slice(1);
      break;
    }
    const requestId = newRequestId();
    if (!matched) {
      // Unknown paths answer in the dialect of the service whose prefix they carry.
      const dialect = url.pathname.startsWith('/v3/') ? iamDialect : idaasDialect;
      const err = pathMatched
        ? new EmuError(405, 'method_not_allowed', `Method ${req.method} is not allowed on this resource.`)
        : new EmuError(404, 'not_found', 'The requested resource does not exist.');
      return send(res, { status: err.status, body: dialect.error(err, requestId) }, dialect.requestIdHeader, requestId);
    }

    const route = matched;
    const counter = state.counter(route.name);
    counter.requests += 1;
    counter.inFlight += 1;
    counter.maxInFlight = Math.max(counter.maxInFlight, counter.inFlight);
    try {
      const fault = state.takeFault(route.name);
      const delay = (fault?.latencyMs ?? 0) + latencyMs;
      if (delay > 0) await sleep(delay);
      if (fault?.reset) {
        req.socket.destroy();
        return;
      }
      if (fault?.truncated) {
        // The status, the headers and part of a declared body, then the connection drops.
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': '4096', [route.dialect.requestIdHeader]: requestId });
        res.write('{"entities": [', () => setTimeout(() => req.socket.destroy(), 20));
        return;
      }
      if (fault?.malformed) {
        return send(res, { status: 200, body: '{"entities": [{"instanceId": ' }, route.dialect.requestIdHeader, requestId);
      }
      if (fault?.status) {
        const body =
          fault.body ??
          route.dialect.error(new EmuError(fault.status, faultCode(fault.status), 'Injected fault.'), requestId);
        // Throttling answers carry Retry-After, as the real services' do, unless the fault sets it.
        const given = Object.fromEntries(Object.entries(fault.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
        const headers = fault.status === 429 ? { 'retry-after': '1', ...given } : given;
        return send(res, { status: fault.status, headers, body }, route.dialect.requestIdHeader, requestId);
      }
      let response;
      try {
        const raw = await readBody(req);
        response = await route.handle(buildRequest(req, url, params.map(decodeParam), raw, requestId, state.now()));
      } catch (e) {
        const err =
          e instanceof EmuError ? e : new EmuError(500, 'internal_error', 'The server encountered an internal error.');
        response = { status: err.status, headers: err.headers, body: route.dialect.error(err, requestId) };
      }
      send(res, response, route.dialect.requestIdHeader, requestId);
    } finally {
      counter.inFlight -= 1;
    }
  }

  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500).end();
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const host = options.host && options.host !== '0.0.0.0' ? options.host : '127.0.0.1';
  url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;

  return {
    url,
    state,
    oidc,
    inject: (fault) => void state.faults.push(checkFault(fault)),
    counters: () => state.snapshot(),
    reset,
    advanceClock: (ms) => void (state.clockOffsetMs += ms),
    revokeAccessTokens: () => issuedTokens.revokeAll(),
    setStsTtlSeconds: (seconds) => void (sts.ttlSeconds = seconds || undefined),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function faultCode(status: number): string {
  if (status === 429) return 'throttling';
  if (status === 503) return 'service_unavailable';
  if (status >= 500) return 'internal_error';
  return 'injected';
}

/** Path captures are percent-decoded; a malformed escape is the client's error, not a bodyless 500. */
function decodeParam(p: string): string {
  try {
    return decodeURIComponent(p);
  } catch {
    throw new EmuError(400, 'invalid_request', 'The request path contains an invalid percent-encoding.');
  }
}
