// Keystone's auth methods as Huawei offers them: password (with a TOTP passcode for MFA users)
// and token (rescoping). Each yields the token record minus its scope, which is resolved after.
import { createHash, timingSafeEqual } from 'node:crypto';
import { authenticator } from 'otplib';
import { IAM_TOKEN_LIFETIME_MS, type IamUserFixture } from '../fixtures.ts';
import type { IamDirectory, Principal, TokenRecord } from './directory.ts';
import { locked, mfaRequired, tokenNotFound, unauthorized } from './errors.ts';
import type { Credentials } from './request-body.ts';

function sha256(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

/** Constant-time, so the emulator does not teach clients to rely on timing. */
function passwordMatches(user: IamUserFixture, password: string): boolean {
  return timingSafeEqual(sha256(user.password), sha256(password));
}

/** RFC 6238 at the emulator clock, one 30 s step either side (clock drift), as Huawei accepts. */
function passcodeMatches(secret: string, passcode: string, now: number): boolean {
  return authenticator.clone({ window: 1, epoch: now }).check(passcode, secret);
}

function principalOf(user: IamUserFixture): Principal {
  return {
    user: {
      domain: user.domain,
      id: user.id,
      name: user.name,
      password_expires_at: user.passwordExpiresAt ?? '',
    },
    roles: user.roles,
    domainId: user.domain.id,
  };
}

export function signInWithPassword(
  dir: IamDirectory,
  credentials: Extract<Credentials, { method: 'password' }>,
  now: number,
): Omit<TokenRecord, 'scope'> {
  const user = dir.findUser(credentials.user);
  if (!user) throw unauthorized();
  const remaining = dir.lockRemaining(user.id, now);
  if (remaining > 0) throw locked(remaining);
  if (!passwordMatches(user, credentials.user.password)) {
    dir.recordFailure(user.id, now);
    throw unauthorized();
  }
  const mfaAuthnAt = verifyMfa(dir, user, credentials.totp, now);
  dir.recordSuccess(user.id);
  return {
    principal: principalOf(user),
    methods: credentials.totp ? ['password', 'totp'] : ['password'],
    issuedAt: now,
    expiresAt: now + IAM_TOKEN_LIFETIME_MS,
    ...(mfaAuthnAt !== undefined ? { mfaAuthnAt } : {}),
  };
}

/** Returns the MFA time when a passcode was verified; throws when one is needed or wrong. */
function verifyMfa(
  dir: IamDirectory,
  user: IamUserFixture,
  totp: { id: string; passcode: string } | undefined,
  now: number,
): number | undefined {
  if (!totp) {
    if (user.totpSecret) throw mfaRequired();
    return undefined;
  }
  // No device to check against: a client mistake, not a guess, so it does not count to the lock.
  if (!user.totpSecret) throw unauthorized();
  if (totp.id !== user.id || !passcodeMatches(user.totpSecret, totp.passcode, now)) {
    dir.recordFailure(user.id, now);
    throw unauthorized();
  }
  return now;
}

/** Rescoping keeps the source token's expiry, as Keystone does, so a token cannot be kept alive forever. */
export function signInWithToken(dir: IamDirectory, tokenId: string, now: number): Omit<TokenRecord, 'scope'> {
  const source = dir.findToken(tokenId, now);
  if (!source) throw tokenNotFound();
  return {
    principal: source.principal,
    methods: ['token'],
    issuedAt: now,
    expiresAt: source.expiresAt,
    ...(source.mfaAuthnAt !== undefined ? { mfaAuthnAt: source.mfaAuthnAt } : {}),
  };
}
