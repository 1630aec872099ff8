// `AUTH_MODE=broker npm start` with nothing else configured: the embedded emulator plays the
// IDaaS token endpoint and the callers' OIDC issuer, the repo's demo policy decides, and the
// audit log goes to ./audit.log. Settings the operator did give are kept. Demo only: `npm start`
// loads this module only while the emulator serves IDaaS.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { BrokerConfig, GatewayConfig } from '../config.ts';
import type { Emulator } from '../emulator/index.ts';
import { DEMO_CALLER_AUDIENCE, DEMO_CALLERS, DEMO_M2M_CLIENT } from '../emulator/fixtures.ts';
import { IDAAS_TOKEN_PATH } from '../emulator/oauth.ts';


/** policies/demo.cedar beside src/ (tsx) or dist/ (the bundle). */
function demoPolicyFile(): string {
  for (const rel of ['../../policies/demo.cedar', '../policies/demo.cedar']) {
    const path = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(path)) return path;
  }
  return 'policies/demo.cedar';
}

export interface DemoBroker {
  /** What `npm start` prints: the demo callers and their tokens. */
  lines: string[];
  /** The first demo caller's JWT, for GraphiQL to pre-fill (when the emulator is the callers' issuer). */
  graphiqlCallerJwt: string | undefined;
}

export async function fillDemoBroker(config: GatewayConfig, emulator: Emulator): Promise<DemoBroker> {
  if (config.auth.mode !== 'broker') return { lines: [], graphiqlCallerJwt: undefined };
  const given: Partial<BrokerConfig> = config.auth;
  const lines: string[] = [];
  const ownClient = given.clientId !== undefined;
  config.auth = {
    ...given,
    mode: 'broker',
    tokenEndpoint: given.tokenEndpoint ?? `${emulator.url}${IDAAS_TOKEN_PATH}`,
    clientId: given.clientId ?? DEMO_M2M_CLIENT.clientId,
    clientSecret: given.clientSecret ?? (ownClient ? undefined : DEMO_M2M_CLIENT.clientSecret),
    clientAuth: given.clientAuth ?? 'client_secret_basic',
    scope: given.scope ?? 'urn:cloud:idaas:pam|.all',
    caller: given.caller ?? { issuer: emulator.oidc.issuer, audience: DEMO_CALLER_AUDIENCE, jwksUrl: undefined, groupsClaim: 'groups' },
    policyFile: given.policyFile ?? demoPolicyFile(),
    auditLog: given.auditLog ?? 'audit.log',
    auditHmacKey: given.auditHmacKey ?? randomBytes(32).toString('base64url'),
  };
  lines.push('Broker mode (demo): the gateway is the IDaaS M2M application; callers sign in with these JWTs (12 h):');
  const tokens: string[] = [];
  for (const c of Object.values(DEMO_CALLERS)) {
    const token = await emulator.oidc.sign({ sub: c.subject, groups: c.groups, expiresInSeconds: 12 * 3600 });
    tokens.push(token);
    lines.push(`  ${c.subject} (${c.groups.join(', ')}):`, `    Authorization: Bearer ${token}`);
  }
  lines.push(`  policy: ${config.auth.policyFile}   audit log: ${config.auth.auditLog}${given.auditHmacKey ? '' : '   (AUDIT_HMAC_KEY: random for this run)'}`);
  return { lines, graphiqlCallerJwt: config.auth.caller?.issuer === emulator.oidc.issuer ? tokens[0] : undefined };
}
