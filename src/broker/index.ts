// Broker mode's gateway-wide services, built once at start-up from a complete BrokerConfig.
// Anything wrong with them (a policy that does not validate, an audit log that cannot be
// opened, an unreadable private key) stops start-up with one line.
import { readFileSync } from 'node:fs';
import { requireBrokerConfig, type GatewayConfig, type BrokerConfig } from '../config.ts';
import type { IdaasCredential } from '../upstreams/idaas/client.ts';
import { AuditLog } from './audit.ts';
import { CallerAuthenticator } from './caller.ts';
import { M2mTokenClient } from './m2m-token.ts';
import { PolicyEngine } from './policy.ts';

export interface BrokerServices {
  config: BrokerConfig;
  m2m: M2mTokenClient;
  /** The M2M token as IDaaS PAM's `Authorization`, renewed after an `invalid_token`. */
  credential: IdaasCredential;
  callers: CallerAuthenticator;
  policy: PolicyEngine;
  audit: AuditLog;
  close(): Promise<void>;
}

/** Start-up problems in broker mode; the message is one line. */
export class BrokerStartError extends Error {}

/** Broker mode's services for a gateway config (ConfigError when a setting is missing). */
export function startBroker(config: Pick<GatewayConfig, 'auth' | 'upstream'>): BrokerServices {
  if (config.auth.mode !== 'broker') throw new Error('startBroker needs AUTH_MODE=broker');
  return createBroker(requireBrokerConfig(config.auth), config.upstream.timeoutMs);
}

export function createBroker(config: BrokerConfig, timeoutMs: number): BrokerServices {
  let privateKeyPem: string | undefined;
  if (config.clientAuth === 'private_key_jwt') {
    try {
      privateKeyPem = readFileSync(config.privateKeyFile!, 'utf8');
    } catch (e) {
      throw new BrokerStartError(`IDAAS_CLIENT_PRIVATE_KEY_FILE: cannot read ${config.privateKeyFile} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
  }
  const m2m = new M2mTokenClient({
    tokenEndpoint: config.tokenEndpoint,
    clientId: config.clientId,
    clientSecret: config.clientSecret,
    clientAuth: config.clientAuth,
    privateKeyPem,
    scope: config.scope,
    timeoutMs,
  });
  const policy = PolicyEngine.load(config.policyFile);
  let audit: AuditLog;
  try {
    audit = AuditLog.open(config.auditLog, config.auditHmacKey);
  } catch (e) {
    throw new BrokerStartError(`AUDIT_LOG: ${(e as Error).message}`);
  }
  return {
    config,
    m2m,
    credential: {
      authorization: async () => `Bearer ${await m2m.token()}`,
      renew: (rejected) => m2m.invalidate(rejected.replace(/^Bearer\s+/i, '')),
    },
    callers: new CallerAuthenticator({
      issuer: config.caller.issuer,
      audience: config.caller.audience,
      jwksUrl: config.caller.jwksUrl,
      groupsClaim: config.caller.groupsClaim,
      timeoutMs,
    }),
    policy,
    audit,
    close: () => audit.close(),
  };
}
