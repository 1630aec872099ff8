// Broker mode: the gateway's own IDaaS access token, obtained with the OAuth 2.0 client
// credentials grant as the M2M application, cached, and refreshed shortly before it expires.
import { createPrivateKey, randomUUID, type KeyObject } from 'node:crypto';
import * as oauth from 'oauth4webapi';
import { SignJWT } from 'jose';
import {
  redact,
  upstreamErrorFromResponse,
  upstreamTimeout,
  upstreamUnavailable,
  upstreamUnreadable,
  UpstreamError,
} from '../errors.ts';

export type ClientAuthMethod = 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt';

export interface M2mTokenOptions {
  /** IDAAS_TOKEN_ENDPOINT (absolute URL; http is allowed, for the emulator). */
  tokenEndpoint: string;
  clientId: string;
  /** Required unless private_key_jwt. */
  clientSecret?: string;
  clientAuth: ClientAuthMethod;
  /** Contents of IDAAS_CLIENT_PRIVATE_KEY_FILE (PEM RSA, PKCS#8 or PKCS#1). */
  privateKeyPem?: string;
  scope: string;
  timeoutMs: number;
  /** ms since the epoch, for tests. */
  now?: () => number;
  /** [0, 1), for the refresh jitter; for tests. */
  random?: () => number;
}

const SERVICE = 'idaas-token';
/** RFC 6749 only recommends expires_in: without it, assume a short life rather than keep a stale token. */
const DEFAULT_LIFETIME_SECONDS = 300;
/** Refresh margin: a tenth of the lifetime, at most this. */
const MAX_REFRESH_MARGIN_MS = 60_000;
/** Replicas that got their tokens together spread their refreshes over the last half of the margin. */
const REFRESH_JITTER = 0.5;
/** After a failed early refresh, the still-valid token is used this long before trying again. */
const RETRY_AFTER_FAILED_REFRESH_MS = 1_000;
/** RFC 7523 leaves the assertion lifetime to the server; IDaaS accepts at most 5 minutes. */
const ASSERTION_LIFETIME_SECONDS = 60;

interface CachedToken {
  token: string;
  expiresAt: number;
  refreshAt: number;
}

export class M2mTokenClient {
  private readonly as: oauth.AuthorizationServer;
  private readonly client: oauth.Client;
  private readonly privateKey: KeyObject | undefined;
  private readonly insecure: boolean;
  private readonly now: () => number;
  private readonly random: () => number;
  private cached: CachedToken | undefined;
  private inFlight: Promise<string> | undefined;
  private made = 0;

  constructor(private readonly opts: M2mTokenOptions) {
    let url: URL;
    try {
      url = new URL(opts.tokenEndpoint);
    } catch {
      throw new Error('tokenEndpoint (IDAAS_TOKEN_ENDPOINT) must be an absolute URL');
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error('tokenEndpoint must be an http(s) URL');
    if (opts.clientAuth === 'private_key_jwt') {
      if (!opts.privateKeyPem) throw new Error('private_key_jwt needs privateKeyPem (IDAAS_CLIENT_PRIVATE_KEY_FILE)');
      this.privateKey = rsaPrivateKey(opts.privateKeyPem);
    } else if (!opts.clientSecret) {
      throw new Error(`${opts.clientAuth} needs clientSecret (IDAAS_CLIENT_SECRET)`);
    }
    this.insecure = url.protocol === 'http:';
    this.as = { issuer: url.origin, token_endpoint: url.href };
    this.client = { client_id: opts.clientId };
    this.now = opts.now ?? Date.now;
    this.random = opts.random ?? Math.random;
  }

  /** How many token requests were made. */
  get requests(): number {
    return this.made;
  }

  /** The cached access token, refreshed near its expiry; one request in flight for all callers. */
  token(): Promise<string> {
    const c = this.cached;
    if (c && this.now() < c.refreshAt) return Promise.resolve(c.token);
    this.inFlight ??= this.refresh().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  /** PAM refused `token` (401 invalid_token): forget it unless a newer one is cached already. */
  invalidate(token: string): void {
    if (this.cached?.token === token) this.cached = undefined;
  }

  private async refresh(): Promise<string> {
    try {
      this.cached = await this.request();
      return this.cached.token;
    } catch (e) {
      // An early refresh that fails leaves a token that is still good: keep serving it, and
      // try again shortly. Without one, every waiter gets the error and the next call retries.
      const c = this.cached;
      const now = this.now();
      if (c && now < c.expiresAt) {
        c.refreshAt = Math.min(now + RETRY_AFTER_FAILED_REFRESH_MS, c.expiresAt);
        return c.token;
      }
      throw e;
    }
  }

  private async request(): Promise<CachedToken> {
    this.made += 1;
    const startedAt = this.now();
    const sent: string[] = [];
    const secrets = () => [this.opts.clientSecret, ...sent];
    const signal = AbortSignal.timeout(this.opts.timeoutMs);
    let response: Response;
    try {
      response = await oauth.clientCredentialsGrantRequest(
        this.as,
        this.client,
        this.clientAuth(sent),
        { scope: this.opts.scope },
        { signal, [oauth.allowInsecureRequests]: this.insecure },
      );
    } catch (e) {
      throw this.transportError(e, secrets());
    }
    const requestId = response.headers.get('x-acs-request-id') ?? undefined;
    if (response.status !== 200) throw await this.errorAnswer(response, requestId, secrets());

    let result: oauth.TokenEndpointResponse;
    try {
      result = await oauth.processClientCredentialsResponse(this.as, this.client, response);
    } catch (e) {
      if (transportFailure(e)) throw this.transportError(e, secrets());
      // oauth4webapi's messages name the missing or wrong field, not the token.
      throw upstreamUnreadable(SERVICE, 200, requestId, e instanceof Error ? redact(e.message, secrets()) : 'invalid token response');
    }
    // Counted from before the request, so the cache never outlives the real token.
    const lifetimeMs = (result.expires_in ?? DEFAULT_LIFETIME_SECONDS) * 1000;
    const expiresAt = startedAt + lifetimeMs;
    const margin = Math.min(lifetimeMs / 10, MAX_REFRESH_MARGIN_MS);
    return { token: result.access_token, expiresAt, refreshAt: expiresAt - margin * (1 - REFRESH_JITTER * this.random()) };
  }

  private clientAuth(sent: string[]): oauth.ClientAuth {
    const { clientAuth, clientSecret } = this.opts;
    if (clientAuth === 'client_secret_basic') return oauth.ClientSecretBasic(clientSecret!);
    if (clientAuth === 'client_secret_post') return oauth.ClientSecretPost(clientSecret!);
    // oauth4webapi's PrivateKeyJwt sets aud to the issuer; IDaaS wants the token endpoint.
    return async (_as, client, body) => {
      // The token endpoint checks iat/exp against its own clock, not the cache's `now`.
      const iat = Math.floor(Date.now() / 1000);
      const assertion = await new SignJWT({})
        .setProtectedHeader({ alg: 'RS256', typ: 'JWT' })
        .setIssuer(client.client_id)
        .setSubject(client.client_id)
        .setAudience(this.as.token_endpoint!)
        .setJti(randomUUID())
        .setIssuedAt(iat)
        .setExpirationTime(iat + ASSERTION_LIFETIME_SECONDS)
        .sign(this.privateKey!);
      sent.push(assertion);
      body.set('client_id', client.client_id);
      body.set('client_assertion_type', 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer');
      body.set('client_assertion', assertion);
    };
  }

  /** An OAuth error answer (src/errors.ts: the operator's problem, UPSTREAM_ERROR, or IDaaS's, 5xx). */
  private async errorAnswer(response: Response, requestId: string | undefined, secrets: (string | undefined)[]) {
    let body: unknown;
    try {
      const text = await response.text();
      body = JSON.parse(text);
    } catch (e) {
      if (transportFailure(e)) return this.transportError(e, secrets);
      body = undefined;
    }
    return upstreamErrorFromResponse(SERVICE, { status: response.status, json: body, requestId }, { secrets });
  }

  private transportError(e: unknown, secrets: (string | undefined)[]): UpstreamError {
    if (transportFailure(e) === 'timeout') return upstreamTimeout(SERVICE, `no answer within ${this.opts.timeoutMs} ms`);
    let why = e instanceof Error ? e.message : 'request failed';
    // The socket error's code (ECONNREFUSED, UND_ERR_SOCKET) says more than fetch's "fetch failed".
    for (let x = e as { cause?: unknown; code?: unknown } | undefined, d = 0; x && typeof x === 'object' && d < 4; d++) {
      if (typeof x.code === 'string' && d > 0) why = x.code;
      x = x.cause as typeof x;
    }
    return upstreamUnavailable(SERVICE, redact(why, secrets));
  }
}

function rsaPrivateKey(pem: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch {
    // Never quote the key.
    throw new Error('privateKeyPem (IDAAS_CLIENT_PRIVATE_KEY_FILE) is not a PEM private key');
  }
  if (key.asymmetricKeyType !== 'rsa') throw new Error('privateKeyPem (IDAAS_CLIENT_PRIVATE_KEY_FILE) must be an RSA key (RS256)');
  return key;
}

type Failure = 'timeout' | 'network';

/** A timeout or fetch's own failure (connection refused, reset), however deeply wrapped. */
function transportFailure(e: unknown): Failure | undefined {
  let x = e as { name?: unknown; cause?: unknown } | undefined;
  for (let depth = 0; x && typeof x === 'object' && depth < 4; depth++, x = x.cause as typeof x) {
    if (x.name === 'TimeoutError') return 'timeout';
    const code = (x.cause as { code?: unknown } | undefined)?.code;
    if (x instanceof TypeError && typeof code === 'string') return 'network';
  }
  return undefined;
}
