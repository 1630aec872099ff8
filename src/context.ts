// The per-request context: upstream clients bound to the caller and to the request's
// deadline, per-request loaders, and the gateway-wide services they share. Nothing in it
// outlives the request.
import DataLoader from 'dataloader';
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { YogaInitialContext } from 'graphql-yoga';
import type { GatewayConfig } from './config.ts';
import type { RequestScope, UpstreamCallRecord, UpstreamHttp } from './upstreams/http.ts';
import type { ListAuthenticationTokensParams } from './upstreams/idaas/client.ts';
import type { AuthenticationTokenPage } from './upstreams/idaas/schemas.ts';
import type { SignInGuard } from './upstreams/iam/guard.ts';
import { createAccess, type Access } from './broker/access.ts';
import type { BrokerServices } from './broker/index.ts';
import type { CursorCodec } from './schema/cursor.ts';
import type { GatewayMetrics } from './observability/metrics.ts';
import type { LeaseRegistry } from './leases/lease.ts';

/** What createGateway builds once and every request shares. */
export interface GatewayServices {
  config: GatewayConfig;
  http: UpstreamHttp;
  cursors: CursorCodec;
  logger: Logger;
  /** The per-operation line's logger (see operationLogger in logger.ts). */
  operationLogger: Logger;
  metrics: GatewayMetrics;
  signInGuard: SignInGuard;
  /** Broker mode's token client, caller sign-in, policy and audit log; undefined in forward mode. */
  broker: BrokerServices | undefined;
  /** The open credential leases (subscriptions): the per-caller limit, and their end at shutdown. */
  leases: LeaseRegistry;
}

export interface Context {
  services: GatewayServices;
  requestId: string;
  logger: Logger;
  /** Every upstream call of this request, with its upstream request id (logged per operation). */
  upstreamCalls: UpstreamCallRecord[];
  /** The only way to the upstream clients: by naming the action and resource (src/broker/access.ts). */
  access: Access;
  /**
   * Identical page requests within one operation are made once; different ones run concurrently.
   * Each consumer's pages are read only after the `listAuthenticationTokens` decision for it.
   */
  authenticationTokenPages: DataLoader<ListAuthenticationTokensParams, AuthenticationTokenPage, string>;
  /** The client went away (without the request's deadline): what ends a subscription. */
  clientSignal: AbortSignal;
  /**
   * The same caller's access, for upstream calls outside the request's deadline (each renewal of a
   * credential lease): its own scope (signal, call record) and request id (audit lines).
   */
  accessWithin(scope: RequestScope, requestId: string): Access;
  /** SHA-256 (base64url) of the `Authorization` value, undefined without one: a caller in forward mode. */
  authorizationHash(): string | undefined;
}

/**
 * The request's abort signal: fires at the deadline or when the client goes away. Made on first
 * use (the request's first upstream call), with the deadline still counted from the request's
 * start; `dispose` (once the response is out) clears its timer. Made lazily and by hand because
 * AbortSignal.timeout() + AbortSignal.any() on every request showed in the benchmark's profile.
 */
export class RequestDeadline {
  readonly #started = performance.now();
  #controller: AbortController | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #onClientAbort: (() => void) | undefined;

  constructor(
    private readonly clientSignal: AbortSignal,
    private readonly deadlineMs: number,
  ) {}

  get signal(): AbortSignal {
    if (!this.#controller) {
      const controller = (this.#controller = new AbortController());
      const left = Math.max(0, this.deadlineMs - (performance.now() - this.#started));
      this.#timer = setTimeout(() => controller.abort(new DOMException('request deadline reached', 'TimeoutError')), left);
      const client = this.clientSignal;
      if (client.aborted) controller.abort(client.reason);
      else {
        this.#onClientAbort = () => controller.abort(client.reason);
        client.addEventListener('abort', this.#onClientAbort, { once: true });
      }
    }
    return this.#controller.signal;
  }

  dispose(): void {
    if (this.#timer) clearTimeout(this.#timer);
    if (this.#onClientAbort) this.clientSignal.removeEventListener('abort', this.#onClientAbort);
  }
}

export function createContext(services: GatewayServices, initial: YogaInitialContext, requestId: string, deadline: RequestDeadline): Context {
  const logger = services.logger.child({ requestId });
  const upstreamCalls: UpstreamCallRecord[] = [];
  const scope: RequestScope = {
    logger,
    get signal() {
      return deadline.signal;
    },
    calls: upstreamCalls,
  };
  const authorization = initial.request.headers.get('authorization')?.trim() || undefined;
  const access = createAccess(services, scope, authorization, requestId);
  const listPage = async (k: ListAuthenticationTokensParams) => {
    const upstreams = await access.read({
      action: 'listAuthenticationTokens',
      resource: { type: 'Consumer', id: k.consumerId, instanceId: k.instanceId },
    });
    return upstreams.idaas().listAuthenticationTokens(k);
  };
  return {
    services,
    requestId,
    logger,
    upstreamCalls,
    access,
    authenticationTokenPages: new DataLoader((keys) => Promise.all(keys.map((k) => listPage(k).catch((e: Error) => e))), {
      cacheKeyFn: pageKey,
    }),
    // A getter: the adapter makes a request's signal on first use.
    get clientSignal() {
      return initial.request.signal;
    },
    accessWithin: (own, id) => createAccess(services, own, authorization, id),
    authorizationHash: () => (authorization ? createHash('sha256').update(authorization).digest('base64url') : undefined),
  };
}

/**
 * The loader's cache key. Every field but the last is free of control characters (validated
 * ids, booleans, a number), so NUL separators cannot make two different requests collide, even
 * with an upstream nextToken containing NUL. (Cheaper than JSON.stringify of an array.)
 */
function pageKey(p: ListAuthenticationTokensParams): string {
  return `${p.instanceId}\0${p.consumerId}\0${p.credentialProviderIdentifier}\0${p.revoked ?? ''}\0${p.expired ?? ''}\0${p.maxResults}\0${p.nextToken ?? ''}`;
}
