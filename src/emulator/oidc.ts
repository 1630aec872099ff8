// A demo OIDC issuer for the gateway's own callers (broker mode): a discovery document, a JWKS
// and a signer. There is no login flow; tests and the control route mint tokens directly.
import { createHash, generateKeyPair, randomUUID, type KeyObject } from 'node:crypto';
import { SignJWT, type JWTPayload } from 'jose';
import { z } from 'zod';
import { type Dialect, type EmulatorState, type Route } from './core.ts';
import { DEMO_CALLER_AUDIENCE } from './fixtures.ts';

/** Plain JSON errors: the gateway only ever reads these as "not 200". */
export const oidcDialect: Dialect = {
  requestIdHeader: 'x-request-id',
  error: (err, requestId) => ({ error: err.code, error_description: err.message, request_id: requestId, ...err.extra }),
};

export interface OidcClaims {
  sub: string;
  groups?: string[];
  aud?: string | string[];
  iss?: string;
  /** Lifetime from `iat`; negative values make already expired tokens. Default 1 hour. */
  expiresInSeconds?: number;
  /** Any other claim (`nbf`, a custom groups claim, ...), or an override of `iat` / `exp`. */
  [claim: string]: unknown;
}

export interface OidcApi {
  /** `${emulator.url}/oidc` */
  readonly issuer: string;
  sign(claims: OidcClaims): Promise<string>;
  /** A new signing key with a new kid; the JWKS then serves only the new one. */
  rotateKey(): void;
}

const DEFAULT_LIFETIME_SECONDS = 3600;

interface SigningKey {
  kid: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
}

/** On the thread pool: an RSA key pair takes 0.1-0.5 s, which would stall the event loop. */
function newKey(): Promise<SigningKey> {
  return new Promise((resolve, reject) =>
    generateKeyPair('rsa', { modulusLength: 2048 }, (err, publicKey, privateKey) => {
      if (err) return reject(err);
      const spki = publicKey.export({ type: 'spki', format: 'der' });
      resolve({ kid: createHash('sha256').update(spki).digest('base64url').slice(0, 16), privateKey, publicKey });
    }),
  );
}

export class OidcIssuer implements OidcApi {
  /**
   * Made on first use, not at construction: only broker mode and its tests sign caller tokens,
   * and generating it up front was most of the embedded emulator's start-up.
   */
  private key: Promise<SigningKey> | undefined;

  /** `baseUrl` is a getter because the emulator's port is known only once it listens. */
  constructor(
    private readonly state: EmulatorState,
    private readonly baseUrl: () => string,
  ) {}

  private signingKey(): Promise<SigningKey> {
    return (this.key ??= newKey());
  }

  get issuer(): string {
    return `${this.baseUrl()}/oidc`;
  }

  rotateKey(): void {
    this.key = undefined;
  }

  async sign(claims: OidcClaims): Promise<string> {
    const { sub, groups, aud, iss, expiresInSeconds, ...rest } = claims;
    // The emulator's clock, so advanceClock() ages caller tokens like every other credential.
    const iat = Math.floor(this.state.now() / 1000);
    const payload: JWTPayload = {
      iss: iss ?? this.issuer,
      sub,
      aud: aud ?? DEMO_CALLER_AUDIENCE,
      iat,
      exp: iat + (expiresInSeconds ?? DEFAULT_LIFETIME_SECONDS),
      jti: randomUUID(),
      ...(groups === undefined ? {} : { groups }),
      ...rest,
    };
    const { kid, privateKey } = await this.signingKey();
    return new SignJWT(payload).setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid }).sign(privateKey);
  }

  discovery(): Record<string, unknown> {
    return {
      issuer: this.issuer,
      jwks_uri: `${this.issuer}/jwks`,
      // Required fields of OIDC Discovery; no authorization flow is actually served.
      response_types_supported: ['id_token'],
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: ['RS256'],
      claims_supported: ['iss', 'sub', 'aud', 'iat', 'exp', 'jti', 'groups'],
    };
  }

  async jwks(): Promise<{ keys: Record<string, unknown>[] }> {
    const { kid, publicKey } = await this.signingKey();
    return { keys: [{ ...publicKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' }] };
  }

  routes(): Route[] {
    return [
      {
        name: 'oidc.discovery',
        method: 'GET',
        pattern: /^\/oidc\/\.well-known\/openid-configuration$/,
        dialect: oidcDialect,
        handle: () => ({ status: 200, body: this.discovery() }),
      },
      {
        name: 'oidc.jwks',
        method: 'GET',
        pattern: /^\/oidc\/jwks$/,
        dialect: oidcDialect,
        handle: async () => ({ status: 200, headers: { 'content-type': 'application/jwk-set+json' }, body: await this.jwks() }),
      },
    ];
  }
}

const tokenRequestSchema = z
  .object({
    sub: z.string().min(1),
    groups: z.array(z.string()).optional(),
    aud: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional(),
    expiresInSeconds: z.number().int().optional(),
  })
  .strict();

/** Control `POST /__emulator/oidc/token {sub, groups?, aud?, expiresInSeconds?}` → `{ token }`. */
export async function controlOidcToken(oidc: OidcApi, body: unknown): Promise<{ status: number; body: unknown }> {
  const parsed = tokenRequestSchema.safeParse(body);
  if (!parsed.success) {
    const error = parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ');
    return { status: 400, body: { error } };
  }
  return { status: 200, body: { token: await oidc.sign(parsed.data) } };
}
