// IAM client for Keystone-v3-style `POST /v3/auth/tokens` (Huawei Cloud, Orange Business
// Cloud, OpenStack Keystone). Endpoints are chosen by configured name only; a client can
// never make the gateway call a URL of its choosing.
import type { RequestScope, UpstreamHttp, UpstreamResponse } from '../http.ts';
import { badInput, upstreamNotConfigured, upstreamUnreadable, UpstreamError } from '../../errors.ts';
import { iamTokenBodySchema, type IamTokenBody } from './schemas.ts';
import type { SignInGuard } from './guard.ts';

export interface IamEndpoint {
  name: string;
  url: string;
}

export type KeystoneRef = { id: string } | { name: string };
export type KeystoneScope = { project: { id: string } | { name: string; domain: KeystoneRef } } | { domain: KeystoneRef } | 'unscoped';

export interface CreateTokenParams {
  endpoint?: string | null;
  password?: { user: { id: string } | { name: string; domain: KeystoneRef }; password: string };
  totp?: { userId: string; passcode: string };
  token?: string;
  receipt?: string | null;
  scope?: KeystoneScope | null;
  includeCatalog: boolean;
}

export type IamToken = IamTokenBody & { value: string; endpoint: string };

/** The configured endpoint a client names (the first when it names none). */
export function iamEndpoint(endpoints: readonly IamEndpoint[], name?: string | null): IamEndpoint {
  if (endpoints.length === 0) throw upstreamNotConfigured('iam');
  if (name == null) return endpoints[0]!;
  const found = endpoints.find((e) => e.name === name);
  if (!found) throw badInput(`Unknown IAM endpoint "${name}". Configured: ${endpoints.map((e) => e.name).join(', ')}.`);
  return found;
}

export class IamClient {
  constructor(
    private readonly http: UpstreamHttp,
    readonly endpoints: readonly IamEndpoint[],
    private readonly guard: SignInGuard,
    private readonly scope: RequestScope = {},
  ) {}

  endpoint(name?: string | null): IamEndpoint {
    return iamEndpoint(this.endpoints, name);
  }

  /** POST /v3/auth/tokens. Never retried: a rejected password counts towards the IAM's lockout. */
  async createToken(p: CreateTokenParams): Promise<IamToken> {
    const endpoint = this.endpoint(p.endpoint);
    const methods = [p.password && 'password', p.totp && 'totp', p.token && 'token'].filter((m): m is string => Boolean(m));
    const identity: Record<string, unknown> = { methods };
    if (p.password) identity.password = { user: { ...p.password.user, password: p.password.password } };
    if (p.totp) identity.totp = { user: { id: p.totp.userId, passcode: p.totp.passcode } };
    if (p.token) identity.token = { id: p.token };
    const secrets = [p.password?.password, p.totp?.passcode, p.token, p.receipt ?? undefined];
    // Reserved before the call (or RATE_LIMITED without one), settled with the IAM's answer.
    const attempt = p.password ? await this.guard.begin(endpoint.name, p.password.user) : undefined;
    let token: IamToken;
    try {
      token = await this.#createToken(p, endpoint, identity, secrets);
    } catch (e) {
      if (attempt) {
        if (e instanceof UpstreamError && e.code === 'UNAUTHENTICATED') await attempt.rejected();
        else if (e instanceof UpstreamError && e.reason === 'USER_LOCKED') await attempt.lockedByIam();
        else await attempt.released();
      }
      throw e;
    }
    await attempt?.succeeded(token.user);
    return token;
  }

  async #createToken(
    p: CreateTokenParams,
    endpoint: IamEndpoint,
    identity: Record<string, unknown>,
    secrets: (string | undefined)[],
  ): Promise<IamToken> {

    const { data, response } = await this.http.call(
      {
        service: 'iam',
        operation: p.token ? 'createScopedToken' : 'createToken',
        baseUrl: endpoint.url,
        method: 'POST',
        path: '/v3/auth/tokens',
        query: { nocatalog: p.includeCatalog ? undefined : 'true' },
        headers: p.receipt ? { 'openstack-auth-receipt': p.receipt } : {},
        body: { auth: { identity, ...(p.scope ? { scope: p.scope } : {}) } },
        ok: [200, 201],
        secrets,
        ...this.scope,
        presentedToken: Boolean(p.token),
      },
      iamTokenBodySchema,
    );
    const value = header(response, 'x-subject-token');
    if (!value) throw upstreamUnreadable('iam', response.status, response.requestId, 'no X-Subject-Token header');
    return { ...data, value, endpoint: endpoint.name };
  }
}

function header(res: UpstreamResponse, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}
