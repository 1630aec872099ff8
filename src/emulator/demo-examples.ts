// What GraphiQL is pre-filled with while the emulator serves IDaaS: the example operations'
// values from the demo data set, and a demo `Authorization`. `npm start` passes it to the
// gateway (config.graphiqlDemo); the gateway itself knows no demo data.
import type { ExampleValues, GraphiqlDemo } from '../graphiql.ts';
import {
  DEMO_ACCESS_TOKENS,
  DEMO_AUTHENTICATION_TOKENS,
  DEMO_CLOUD_ACCOUNT_ROLES,
  DEMO_CONSUMERS,
  DEMO_CREDENTIAL_PROVIDERS,
  DEMO_IAM_DOMAIN,
  DEMO_IAM_FEDERATED,
  DEMO_IAM_PROJECTS,
  DEMO_IAM_USERS,
  DEMO_INSTANCE_ID,
} from './fixtures.ts';

/** The consumer's first token that is neither revoked nor expired: one that mints a JWT. */
const usableToken = DEMO_AUTHENTICATION_TOKENS.find(
  (t) =>
    t.instanceId === DEMO_INSTANCE_ID &&
    t.consumerId === DEMO_CONSUMERS.medium &&
    t.credentialProviderId === DEMO_CREDENTIAL_PROVIDERS.jwt.credentialProviderId &&
    !t.revoked &&
    t.expirationTime > Date.now(),
)!;

export const DEMO_EXAMPLE_VALUES: ExampleValues = {
  instanceId: DEMO_INSTANCE_ID,
  consumerId: DEMO_CONSUMERS.medium,
  credentialProviderIdentifier: DEMO_CREDENTIAL_PROVIDERS.jwt.identifier,
  authenticationTokenId: usableToken.authenticationTokenId,
  alibabaRoleExternalId: DEMO_CLOUD_ACCOUNT_ROLES.alibaba.cloudAccountRoleExternalId,
  awsRoleExternalId: DEMO_CLOUD_ACCOUNT_ROLES.aws.cloudAccountRoleExternalId,
  domainName: DEMO_IAM_DOMAIN.name,
  projectName: DEMO_IAM_PROJECTS.euWest0.name,
  passwordUser: { userName: DEMO_IAM_USERS.password.name, password: DEMO_IAM_USERS.password.password },
  mfaUser: { userName: DEMO_IAM_USERS.mfa.name, password: DEMO_IAM_USERS.mfa.password, userId: DEMO_IAM_USERS.mfa.id },
  federatedToken: DEMO_IAM_FEDERATED.token,
};

/** Forward mode: the demo access token with every scope. Broker mode: a demo caller's JWT. */
export function graphiqlDemo(brokerCallerJwt?: string): GraphiqlDemo {
  return brokerCallerJwt
    ? { values: DEMO_EXAMPLE_VALUES, authorization: `Bearer ${brokerCallerJwt}`, broker: true }
    : { values: DEMO_EXAMPLE_VALUES, authorization: `Bearer ${DEMO_ACCESS_TOKENS.full.token}`, broker: false };
}
