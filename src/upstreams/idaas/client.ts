// IDaaS PAM client: one method per upstream operation, named as the upstream names them.
// Path values are validated by the schema layer and encoded here, so no input can change
// the upstream path or host.
import type { RequestScope, UpstreamHttp } from '../http.ts';
import { GatewayError } from '../../errors.ts';
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

const bool = (v: boolean | null | undefined) => (v === null || v === undefined ? undefined : String(v));

export class IdaasClient {
  constructor(
    private readonly http: UpstreamHttp,
    private readonly endpoints: IdaasEndpoints,
    /** The caller's `Authorization` header, forwarded verbatim. */
    private readonly authorization: string,
    private readonly scope: RequestScope = {},
  ) {}

  private base(instanceId: string): string {
    const url = this.endpoints.instanceEndpoints.get(instanceId) ?? this.endpoints.endpoint;
    if (!url) throw new GatewayError('No IDaaS PAM endpoint is configured', 'UPSTREAM_UNAVAILABLE', { upstream: { service: 'idaas' } });
    return url;
  }

  private common(instanceId: string) {
    return {
      service: 'idaas' as const,
      baseUrl: this.base(instanceId),
      headers: { authorization: this.authorization },
      secrets: [this.authorization, this.authorization.replace(/^Bearer\s+/i, '')],
      ...this.scope,
    };
  }

  async listAuthenticationTokens(p: ListAuthenticationTokensParams): Promise<AuthenticationTokenPage> {
    const { data } = await this.http.call(
      {
        ...this.common(p.instanceId),
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
    return data;
  }

  async obtainJwt(p: { instanceId: string; consumerId: string; authenticationTokenId: string }) {
    const { data } = await this.http.call(
      {
        ...this.common(p.instanceId),
        operation: 'obtainJwt',
        method: 'POST',
        path: `/v2/${encodeURIComponent(p.instanceId)}/authenticationTokens/_/actions/obtainJwt`,
        body: { consumerId: p.consumerId, authenticationTokenId: p.authenticationTokenId },
        ok: [200, 201],
      },
      obtainJwtSchema,
    );
    return data;
  }

  async obtainAccessCredential(p: { instanceId: string; cloudAccountRoleExternalId: string; durationSeconds?: number | null }) {
    const { data } = await this.http.call(
      {
        ...this.common(p.instanceId),
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
    return data;
  }
}
