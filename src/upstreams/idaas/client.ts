// IDaaS PAM client: one method per upstream operation, named as the upstream names them.
// Path values are validated by the schema layer and encoded here, so no input can change
// the upstream path or host.
import type { BodyReader, RequestScope, UpstreamHttp, UpstreamRequest } from '../http.ts';
import { upstreamNotConfigured, UpstreamError } from '../../errors.ts';
import {
  authenticationTokenPageReader,
  obtainAccessCredentialSchema,
  obtainJwtSchema,
  type AuthenticationTokenPage,
} from './schemas.ts';

export interface IdaasEndpoints {
  endpoint: string | undefined;
  instanceEndpoints: Map<string, string>;
}

export interface ListAuthenticationTokensParams {
  instanceId: string;
  consumerId: string;
  credentialProviderIdentifier: string;
  revoked?: boolean | null;
  expired?: boolean | null;
  nextToken?: string | null;
  maxResults: number;
}

/**
 * What the gateway sends as IDaaS's `Authorization`: the caller's own header (forward mode), or
 * the gateway's M2M access token (broker mode), which can be renewed after PAM rejects it.
 */
export interface IdaasCredential {
  authorization(): string | Promise<string>;
  /** PAM answered 401 invalid_token for this value: drop it, so that the next `authorization()` is new. */
  renew?(rejected: string): void;
}

const bool = (v: boolean | null | undefined) => (v === null || v === undefined ? undefined : String(v));

export class IdaasClient {
  constructor(
    private readonly http: UpstreamHttp,
    private readonly endpoints: IdaasEndpoints,
    private readonly credential: IdaasCredential,
    private readonly scope: RequestScope = {},
  ) {}

  private base(instanceId: string): string {
    const url = this.endpoints.instanceEndpoints.get(instanceId) ?? this.endpoints.endpoint;
    if (!url) throw upstreamNotConfigured('idaas');
    return url;
  }

  /**
   * One PAM call with the credential. A renewable credential that PAM calls `invalid_token` (say
   * the M2M token was revoked or the clock jumped) is renewed once and the call made once more:
   * PAM refused it before doing anything, so even a minting call is safe to repeat.
   */
  private async send<T>(instanceId: string, req: Omit<UpstreamRequest, 'service' | 'baseUrl'>, reader: BodyReader<T>): Promise<T> {
    const baseUrl = this.base(instanceId);
    const attempt = (authorization: string) =>
      this.http.call(
        {
          ...req,
          service: 'idaas',
          baseUrl,
          headers: { authorization },
          secrets: [authorization, authorization.replace(/^Bearer\s+/i, '')],
          ...this.scope,
        },
        reader,
      );
    const authorization = await this.credential.authorization();
    try {
      return (await attempt(authorization)).data;
    } catch (e) {
      if (!this.credential.renew || !(e instanceof UpstreamError) || e.upstream.status !== 401 || e.upstream.code !== 'invalid_token') throw e;
      this.credential.renew(authorization);
      return (await attempt(await this.credential.authorization())).data;
    }
  }

  async listAuthenticationTokens(p: ListAuthenticationTokensParams): Promise<AuthenticationTokenPage> {
    return this.send(
      p.instanceId,
      {
        operation: 'listAuthenticationTokens',
        method: 'GET',
        path: `/v2/${encodeURIComponent(p.instanceId)}/authenticationTokens`,
        query: {
          consumerId: p.consumerId,
          credentialProviderIdentifier: p.credentialProviderIdentifier,
          revoked: bool(p.revoked),
          expired: bool(p.expired),
          maxResults: String(p.maxResults),
          nextToken: p.nextToken ?? undefined,
        },
        ok: [200],
        retry: true,
      },
      authenticationTokenPageReader(p.credentialProviderIdentifier),
    );
  }

  async obtainJwt(p: { instanceId: string; consumerId: string; authenticationTokenId: string }) {
    return this.send(
      p.instanceId,
      {
        operation: 'obtainJwt',
        method: 'POST',
        path: `/v2/${encodeURIComponent(p.instanceId)}/authenticationTokens/_/actions/obtainJwt`,
        body: { consumerId: p.consumerId, authenticationTokenId: p.authenticationTokenId },
        ok: [200, 201],
      },
      obtainJwtSchema,
    );
  }

  async obtainAccessCredential(p: { instanceId: string; cloudAccountRoleExternalId: string; durationSeconds?: number | null }) {
    return this.send(
      p.instanceId,
      {
        operation: 'obtainAccessCredential',
        method: 'GET',
        path: `/v2/${encodeURIComponent(p.instanceId)}/cloudAccountRoles/_/actions/obtainAccessCredential`,
        query: {
          cloudAccountRoleExternalId: p.cloudAccountRoleExternalId,
          durationSeconds: p.durationSeconds == null ? undefined : String(p.durationSeconds),
        },
        ok: [200],
        // Issues a credential: never retried blindly.
      },
      obtainAccessCredentialSchema,
    );
  }
}
