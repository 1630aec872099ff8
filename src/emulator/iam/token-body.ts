// The success body, {"token": {...}}, as Huawei prints it.
import { DEMO_IAM_CATALOG } from '../fixtures.ts';
import type { TokenRecord } from './directory.ts';

/** Huawei's timestamp: ISO-8601 UTC with microseconds. */
export function iamTime(ms: number): string {
  return new Date(ms).toISOString().replace(/Z$/, '000Z');
}

export function renderToken(t: TokenRecord, includeCatalog: boolean) {
  const scoped = t.scope.kind !== 'unscoped';
  return {
    token: {
      methods: t.methods,
      expires_at: iamTime(t.expiresAt),
      issued_at: iamTime(t.issuedAt),
      user: t.principal.user,
      ...(t.scope.kind === 'domain' ? { domain: t.scope.domain } : {}),
      ...(t.scope.kind === 'project' ? { project: t.scope.project } : {}),
      ...(includeCatalog ? { catalog: scoped ? DEMO_IAM_CATALOG : [] } : {}),
      roles: scoped ? t.principal.roles : [],
      ...(t.mfaAuthnAt !== undefined ? { mfa_authn_at: iamTime(t.mfaAuthnAt) } : {}),
    },
  };
}
