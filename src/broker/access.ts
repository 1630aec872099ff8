// Who may reach which upstream, decided in one place. Resolvers get their upstream clients only
// from here, and only by naming what they are about to do (a Cedar action and its resource), so a
// field that names nothing reaches nothing: deny by default.
//
// forward: the caller's own IDaaS `Authorization` goes upstream; no policy, no audit.
// broker:  the caller signs in with an OIDC JWT (which never goes upstream), the Cedar policy
//          decides, IDaaS sees the gateway's M2M token, and every mint is audited fail-closed:
//          the decision line is written before the upstream call, the outcome line before the
//          credential is handed out.
import type { GatewayServices } from '../context.ts';
import { GatewayError, UpstreamError } from '../errors.ts';
import type { RequestScope, UpstreamCallRecord } from '../upstreams/http.ts';
import { IdaasClient, type IdaasCredential } from '../upstreams/idaas/client.ts';
import { IamClient } from '../upstreams/iam/client.ts';
import type { AuditLog, AuditRecord } from './audit.ts';
import type { Caller } from './caller.ts';
import type { AccessRequest } from './policy.ts';

export interface Upstreams {
  idaas(): IdaasClient;
  iam(): IamClient;
}

/** What a mint hands out, for its audit line: the secret is only ever fingerprinted. */
export interface Issued {
  /** Undefined when the upstream answered no secret (nothing to fingerprint). */
  secret: string | undefined;
  expiresAt: Date;
}

export interface Access {
  readonly mode: 'forward' | 'broker';
  /** The signed-in caller (broker mode; UNAUTHENTICATED without a valid token); undefined in forward mode. */
  caller(): Promise<Caller | undefined>;
  /** A read (listing): authorized, not audited. */
  read(request: AccessRequest): Promise<Upstreams>;
  /** A mint: authorized and, in broker mode, audited before and after the upstream call. */
  mint<T>(request: AccessRequest, run: (upstreams: Upstreams) => Promise<T>, issued: (result: T) => Issued): Promise<T>;
}

export const auditUnavailable = () =>
  new GatewayError('The audit log cannot be written, so nothing was issued. Try again later.', 'INTERNAL_SERVER_ERROR', {
    reason: 'AUDIT_UNAVAILABLE',
  });

const forbidden = (r: AccessRequest) =>
  new GatewayError(`The gateway's policy does not allow ${r.action} on ${r.resource.type} "${r.resource.id}".`, 'FORBIDDEN', {
    reason: 'POLICY',
  });

const missingAuthorization = () =>
  new GatewayError('This operation needs the IDaaS access token: send `Authorization: Bearer <access token>`.', 'UNAUTHENTICATED');

export function createAccess(services: GatewayServices, scope: RequestScope, authorization: string | undefined, requestId: string): Access {
  const { config, http, signInGuard } = services;
  const upstreams = (credential: IdaasCredential | undefined, callScope: RequestScope): Upstreams => {
    let idaas: IdaasClient | undefined;
    let iam: IamClient | undefined;
    return {
      idaas: () => {
        if (!credential) throw missingAuthorization();
        return (idaas ??= new IdaasClient(http, config.idaas, credential, callScope));
      },
      iam: () => (iam ??= new IamClient(http, config.iam.endpoints, signInGuard, callScope)),
    };
  };

  const broker = services.broker;
  if (!broker) {
    const shared = upstreams(authorization ? { authorization: () => authorization } : undefined, scope);
    return {
      mode: 'forward',
      caller: async () => undefined,
      read: async () => shared,
      mint: (_request, run) => run(shared),
    };
  }

  const shared = upstreams(broker.credential, scope);
  let caller: Promise<Caller> | undefined;
  const signIn = () => (caller ??= broker.callers.authenticate(authorization));
  const decide = async (request: AccessRequest) => {
    const who = await signIn();
    const allowed = broker.policy.isAllowed(who, request);
    services.metrics.policyDecisions.inc({ action: request.action, decision: allowed ? 'allow' : 'deny' });
    return { who, allowed };
  };
  const audit = async (audit: AuditLog, record: Omit<AuditRecord, 'time'>) => {
    try {
      await audit.write(record);
    } catch (e) {
      services.metrics.auditFailures.inc();
      scope.logger?.error({ err: (e as Error).message, event: record.event, action: record.action }, 'audit log write failed: refusing to issue');
      throw auditUnavailable();
    }
  };

  return {
    mode: 'broker',
    caller: signIn,
    read: async (request) => {
      if (!(await decide(request)).allowed) throw forbidden(request);
      return shared;
    },
    async mint<T>(request: AccessRequest, run: (upstreams: Upstreams) => Promise<T>, issued: (result: T) => Issued): Promise<T> {
      const { who, allowed } = await decide(request);
      const line = {
        requestId,
        caller: { issuer: who.issuer, subject: who.subject, groups: who.groups },
        action: request.action,
        resource: request.resource,
        decision: allowed ? ('allow' as const) : ('deny' as const),
      };
      await audit(broker.audit, { ...line, event: 'decision', outcome: allowed ? 'pending' : 'denied' });
      if (!allowed) throw forbidden(request);

      // This mint's own upstream calls, so that its outcome line names its upstream request id
      // even when sibling fields mint at the same time.
      const calls: UpstreamCallRecord[] = [];
      const own: RequestScope = {
        logger: scope.logger,
        get signal() {
          return scope.signal;
        },
        calls,
      };
      let result: T;
      try {
        result = await run(upstreams(broker.credential, own));
      } catch (e) {
        const upstreamRequestId = e instanceof UpstreamError ? e.upstream.requestId : calls.at(-1)?.upstreamRequestId;
        const errorCode = e instanceof GatewayError ? e.code : 'INTERNAL_SERVER_ERROR';
        await audit(broker.audit, { ...line, event: 'outcome', outcome: 'failed', errorCode, ...(upstreamRequestId ? { upstreamRequestId } : {}) });
        throw e;
      } finally {
        scope.calls?.push(...calls);
      }
      const { secret, expiresAt } = issued(result);
      const upstreamRequestId = calls.at(-1)?.upstreamRequestId;
      await audit(broker.audit, {
        ...line,
        event: 'outcome',
        outcome: 'issued',
        ...(upstreamRequestId ? { upstreamRequestId } : {}),
        expiresAt: expiresAt.toISOString(),
        ...(secret ? { credentialFingerprint: broker.audit.fingerprint(secret) } : {}),
      });
      return result;
    },
  };
}
