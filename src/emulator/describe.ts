// The demo data, as printed by `npm run emulator` and `npm start`.
import {
  DEMO_ACCESS_TOKENS,
  DEMO_CLOUD_ACCOUNT_ROLES,
  DEMO_CONSUMERS,
  DEMO_CREDENTIAL_PROVIDERS,
  DEMO_IAM_DOMAIN,
  DEMO_IAM_FEDERATED,
  DEMO_IAM_PROJECTS,
  DEMO_IAM_USERS,
  DEMO_INSTANCE_ID,
  DEMO_CALLER_AUDIENCE,
  DEMO_CALLERS,
  DEMO_M2M_CLIENT,
} from './fixtures.ts';
import { IDAAS_TOKEN_PATH } from './oauth.ts';

export function describeDemoData(): string {
  const t = DEMO_ACCESS_TOKENS;
  return [
    'Demo data (emulator only, not secrets):',
    `  IDaaS instance:          ${DEMO_INSTANCE_ID}`,
    `  consumers:               ${DEMO_CONSUMERS.large} (160 tokens), ${DEMO_CONSUMERS.medium} (25), ${DEMO_CONSUMERS.small} (3)`,
    `  credential provider:     ${DEMO_CREDENTIAL_PROVIDERS.jwt.identifier}`,
    `  access tokens:           Authorization: Bearer ${t.full.token}   (${t.full.description})`,
    `                           Authorization: Bearer ${t.readOnly.token}   (${t.readOnly.description})`,
    `                           Authorization: Bearer ${t.mint.token}   (${t.mint.description})`,
    `  cloud account roles:     ${DEMO_CLOUD_ACCOUNT_ROLES.alibaba.cloudAccountRoleExternalId} (Alibaba Cloud)`,
    `                           ${DEMO_CLOUD_ACCOUNT_ROLES.aws.cloudAccountRoleExternalId} (AWS)`,
    `  IAM domain / projects:   ${DEMO_IAM_DOMAIN.name} / ${DEMO_IAM_PROJECTS.euWest0.name}, ${DEMO_IAM_PROJECTS.apSoutheast1.name}`,
    `  IAM password user:       ${DEMO_IAM_USERS.password.name} / ${DEMO_IAM_USERS.password.password}`,
    `  IAM MFA user:            ${DEMO_IAM_USERS.mfa.name} / ${DEMO_IAM_USERS.mfa.password}, id ${DEMO_IAM_USERS.mfa.id}, TOTP secret ${DEMO_IAM_USERS.mfa.totpSecret}`,
    `  IAM federated token:     ${DEMO_IAM_FEDERATED.token}`,
    `  M2M client (broker):     ${DEMO_M2M_CLIENT.clientId} / ${DEMO_M2M_CLIENT.clientSecret} at POST ${IDAAS_TOKEN_PATH}`,
    `  OIDC issuer (callers):   <emulator>/oidc, audience ${DEMO_CALLER_AUDIENCE}; ${Object.values(DEMO_CALLERS)
      .map((c) => `${c.subject} (${c.groups.join(', ')})`)
      .join(', ')}; tokens from POST /__emulator/oidc/token`,
  ].join('\n');
}
