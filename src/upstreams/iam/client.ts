// IAM client for Keystone-v3-style `POST /v3/auth/tokens` (Huawei Cloud, Orange Business
// Cloud, OpenStack Keystone). Endpoints are chosen by configured name only; a client can
// never make the gateway call a URL of its choosing.
import type { RequestScope, UpstreamHttp, UpstreamResponse } from '../http.ts';
import { badInput, GatewayError, upstreamNotConfigured, upstreamUnreadable, UpstreamError } from '../../errors.ts';
import { iamTokenBodySchema, type IamTokenBody } from './schemas.ts';
import type { IamUserRef, SignInAttempt, SignInGuard } from './guard.ts';

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

/**
 * The guard reserves an attempt per sign-in in flight, so concurrent sign-ins of one user beyond
 * its failure budget would be refused although they may all succeed (a job that starts ten
 * workers under one service account). While this process has sign-ins of the same user in
 * flight, a refused one waits for them to settle (bounded); otherwise a refusal is immediate.
 */
const GUARD_PATIENCE_MS = 2_000;
const GUARD_POLL_MS = 25;
/** Sign-ins in flight in this process, by endpoint and user as the request names it. */
const signInsInFlight = new Map<string, number>();

async function beginPatiently(guard: SignInGuard, endpoint: string, user: IamUserRef, signal: AbortSignal | undefined): Promise<SignInAttempt> {
  const key = `${endpoint}\0${JSON.stringify(user)}`;
  const giveUpAt = Date.now() + GUARD_PATIENCE_MS;
  for (;;) {
    try {
      const attempt = await guard.begin(endpoint, user);
      signInsInFlight.set(key, (signInsInFlight.get(key) ?? 0) + 1);
      const done = () => {
        const n = (signInsInFlight.get(key) ?? 1) - 1;
        if (n > 0) signInsInFlight.set(key, n);
        else signInsInFlight.delete(key);
      };
      const settle = (f: () => Promise<void>) => () => f().finally(done);
      return {
        rejected: settle(attempt.rejected),
        lockedByIam: settle(attempt.lockedByIam),
        succeeded: (u) => attempt.succeeded(u).finally(done),
        released: settle(attempt.released),
      };
    } catch (e) {
      const retry = e instanceof GatewayError && e.extensions.reason === 'SIGN_IN_GUARD' && signInsInFlight.has(key);
      if (!retry || Date.now() >= giveUpAt || signal?.aborted) throw e;
    }
    await new Promise((resolve) => setTimeout(resolve, GUARD_POLL_MS));
  }
}

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
    const attempt = p.password ? await beginPatiently(this.guard, endpoint.name, p.password.user, this.scope.signal) : undefined;
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
