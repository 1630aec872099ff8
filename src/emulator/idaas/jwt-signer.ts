import { createHash, generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';
import { SignJWT } from 'jose';

/** The `iss` of minted JWTs; the instance's own OAuth issuer. */
export function idaasJwtIssuer(instanceId: string): string {
  return `https://${instanceId}.aliyunidaas.com/api/v2/iauths_system/oauth2`;
}

/** An ES256 key generated once per emulator; minted JWTs carry its `kid`. */
export class JwtSigner {
  private readonly privateKey: KeyObject;
  private readonly publicKey: KeyObject;
  readonly kid: string;

  constructor() {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    this.privateKey = privateKey;
    this.publicKey = publicKey;
    const spki = publicKey.export({ type: 'spki', format: 'der' });
    this.kid = createHash('sha256').update(spki).digest('base64url').slice(0, 16);
  }

  sign(c: {
    instanceId: string;
    subject: string;
    audience: string;
    issuedAt: number;
    expiresAt: number;
    authenticationTokenId: string;
  }): Promise<string> {
    return new SignJWT({ authentication_token_id: c.authenticationTokenId })
      .setProtectedHeader({ alg: 'ES256', typ: 'JWT', kid: this.kid })
      .setIssuer(idaasJwtIssuer(c.instanceId))
      .setSubject(c.subject)
      .setAudience(c.audience)
      .setIssuedAt(c.issuedAt)
      .setExpirationTime(c.expiresAt)
      .setJti(randomUUID())
      .sign(this.privateKey);
  }

  jwks(): { keys: Record<string, unknown>[] } {
    return { keys: [{ ...this.publicKey.export({ format: 'jwk' }), kid: this.kid, alg: 'ES256', use: 'sig' }] };
  }
}
