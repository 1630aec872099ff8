/**
 * What test/keystone/global-setup.ts provides to tests about the real, throw-away
 * OpenStack Keystone it started (scripts/keystone/start.py writes exactly this JSON).
 *
 *   import { inject } from 'vitest';
 *   const ks = inject('keystone');
 *   await fetch(`${ks.url}/v3/auth/tokens`, ...);
 */
export interface KeystoneNamedRef {
  id: string;
  name: string;
}

export interface KeystonePasswordUser extends KeystoneNamedRef {
  password: string;
}

export interface KeystoneMfaUser extends KeystonePasswordUser {
  /** Base32 TOTP secret (32 chars, no padding); SHA1, 6 digits, 30 s: `authenticator.generate(totpSecret)`. */
  totpSecret: string;
}

export interface KeystoneInfo {
  /** Base URL without a path, e.g. http://127.0.0.1:43817 — the identity API is at `${url}/v3`. */
  url: string;
  /** `${url}/v3` (also the catalog's public/internal/admin endpoint URL, with a trailing slash there). */
  authUrl: string;
  /** Catalog region of the identity endpoints: RegionOne. */
  region: string;
  /** Keystone release, e.g. 22.0.2 (Zed, Debian 12). */
  keystoneVersion: string;
  /** [token] expiration: tokens live this long. */
  tokenTtlSeconds: number;
  /** The bootstrap cloud admin (user and project `admin` in domain `default`, role `admin`). */
  admin: { name: string; password: string; domainId: string; projectName: string };
  /** gw-test-domain: both users live here and hold role `member` on it (domain-scoped tokens work). */
  domain: KeystoneNamedRef;
  /** gw-test-project in gw-test-domain: both users hold role `member` on it. */
  project: KeystoneNamedRef;
  /** gw-test-project-2 in gw-test-domain: both users hold role `member` on it too (rescoping). */
  project2: KeystoneNamedRef;
  /** The role assigned above (`member`, created by keystone-manage bootstrap). */
  role: KeystoneNamedRef;
  users: {
    /** Password-only user in gw-test-domain (default project gw-test-project). */
    password: KeystonePasswordUser;
    /** MFA user in gw-test-domain: rules [["password","totp"]], one TOTP credential. */
    mfa: KeystoneMfaUser;
  };
  /** uWSGI master pid; also its process group id (started in its own session). */
  pid: number;
  /** Temp dir holding keystone.conf, the sqlite db, key repositories and logs. */
  dir: string;
  /** Keystone's log file (inside dir). */
  logFile: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    keystone: KeystoneInfo;
  }
}
