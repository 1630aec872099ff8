// GraphiQL, served by the gateway itself: @graphql-yoga/render-graphiql inlines GraphiQL's
// JS, CSS, Monaco workers and favicon into the page, so opening it makes no request to any
// other host (yoga's built-in page loads them from a CDN). The page is rendered once, on
// the first GET, and reused.
//
// The default query is one document of named example operations. With a demo (only while
// the embedded emulator serves IDaaS PAM) it is filled with the emulator's demo ids and
// credentials and a demo `Authorization` header; otherwise it carries placeholders only,
// and no demo secret is ever put in the page.
import type { GraphiQLOptions, YogaServerOptions } from 'graphql-yoga';
import type { GatewayConfig } from './config.ts';

/** The values the example operations are filled with. */
export interface ExampleValues {
  instanceId: string;
  consumerId: string;
  credentialProviderIdentifier: string;
  /** An unrevoked, unexpired authentication token of consumerId. */
  authenticationTokenId: string;
  alibabaRoleExternalId: string;
  awsRoleExternalId: string;
  domainName: string;
  projectName: string;
  passwordUser: { userName: string; password: string };
  mfaUser: { userName: string; password: string; userId: string };
  federatedToken: string;
}

/**
 * What the page is pre-filled with while the embedded emulator serves IDaaS: its demo values and
 * the `Authorization` of a demo caller. The server passes it in when it starts the emulator
 * (src/emulator/demo-examples.ts); the gateway itself knows no demo data.
 */
export interface GraphiqlDemo {
  values: ExampleValues;
  /** The demo access token, or in broker mode a demo caller's JWT (`Bearer …`). */
  authorization: string;
  broker: boolean;
}

/** What a production page shows: placeholders, no secret. */
export const PLACEHOLDER_EXAMPLE_VALUES: ExampleValues = {
  instanceId: 'YOUR_IDAAS_INSTANCE_ID',
  consumerId: 'YOUR_CONSUMER_ID',
  credentialProviderIdentifier: 'YOUR_CREDENTIAL_PROVIDER_IDENTIFIER',
  authenticationTokenId: 'YOUR_AUTHENTICATION_TOKEN_ID',
  alibabaRoleExternalId: 'acs:ram::ACCOUNT_ID:role/ROLE_NAME',
  awsRoleExternalId: 'arn:aws:iam::ACCOUNT_ID:role/ROLE_NAME',
  domainName: 'YOUR_IAM_DOMAIN',
  projectName: 'eu-west-0',
  passwordUser: { userName: 'YOUR_IAM_USER', password: 'YOUR_PASSWORD' },
  mfaUser: { userName: 'YOUR_IAM_USER', password: 'YOUR_PASSWORD', userId: 'YOUR_IAM_USER_ID' },
  federatedToken: 'YOUR_UNSCOPED_FEDERATED_TOKEN',
};

const str = (s: string) => JSON.stringify(s);

/** The example operations, one document (as in GraphiQL and the README). */
export function exampleDocument(v: ExampleValues, demo: boolean, broker = false): string {
  const scope = `{ project: { name: ${str(v.projectName)}, domain: { name: ${str(v.domainName)} } } }`;
  // Short lines: the query editor is about 45 characters wide beside the docs.
  const header = demo
    ? [
        '# Demo data from the embedded emulator.',
        ...(broker
          ? ['# Headers tab: demo caller alice’s JWT', '# (broker mode: the gateway itself signs', '# in to IDaaS; its policy decides).']
          : ['# Headers tab: the demo IDaaS PAM access', '# token (IAM operations need no header).']),
        '# Run an operation: cursor in it, then',
        '# Ctrl+Enter (or the ▶ button).',
        '# SignInWithTotp: put the passcode from',
        '# `npm run -s demo:totp` in Variables.',
      ]
    : [
        '# Replace the YOUR_... placeholders.',
        '# IDaaS PAM operations need your access',
        '# token in the Headers tab:',
        '# { "Authorization": "Bearer ..." }',
        '# Run an operation: cursor in it, then',
        '# Ctrl+Enter (or the ▶ button).',
      ];
  return `${header.join('\n')}

# IDaaS PAM: a consumer's tokens, 5 at a
# time. Next page: put pageInfo.endCursor
# in the "after" variable.
query ListTokens($after: String) {
  instance(instanceId: ${str(v.instanceId)}) {
    authenticationTokens(
      consumerId: ${str(v.consumerId)}
      credentialProviderIdentifier: ${str(v.credentialProviderIdentifier)}
      first: 5
      after: $after
    ) {
      totalCount
      pageInfo { hasNextPage endCursor }
      nodes { authenticationTokenId revoked expired expiresAt }
    }
  }
}

# IDaaS PAM: mint the JWT of a token.
mutation MintJwt {
  obtainJwtAuthenticationToken(input: {
    instanceId: ${str(v.instanceId)}
    consumerId: ${str(v.consumerId)}
    authenticationTokenId: ${str(v.authenticationTokenId)}
    credentialProviderIdentifier: ${str(v.credentialProviderIdentifier)}
  }) {
    authenticationToken { id authenticationTokenId expiresAt }
    jwt { value header claims }
  }
}

# IDaaS PAM: temporary STS credentials for
# an Alibaba Cloud role and an AWS role.
mutation ObtainStsCredentials {
  alibaba: obtainCloudAccountRoleAccessCredential(input: {
    instanceId: ${str(v.instanceId)}
    cloudAccountRoleExternalId: ${str(v.alibabaRoleExternalId)}
    durationSeconds: 900
  }) {
    cloudAccountRole { name vendorType }
    accessCredential {
      expiresAt
      alibabaCloudStsToken { accessKeyId accessKeySecret securityToken expiration }
    }
  }
  aws: obtainCloudAccountRoleAccessCredential(input: {
    instanceId: ${str(v.instanceId)}
    cloudAccountRoleExternalId: ${str(v.awsRoleExternalId)}
  }) {
    cloudAccountRole { name vendorType }
    accessCredential {
      expiresAt
      awsStsToken { accessKeyId secretAccessKey sessionToken expiration }
    }
  }
}

# IAM: sign in with a password, scoped to
# a project.
mutation SignIn {
  createIamToken(input: {
    password: { userName: ${str(v.passwordUser.userName)}, password: ${str(v.passwordUser.password)}, domainName: ${str(v.domainName)} }
    scope: ${scope}
    includeCatalog: false
  }) {
    value
    methods
    expiresAt
    user { id name }
    project { id name }
    roles { name }
    endpoint { name }
  }
}

# IAM: sign in a user with virtual MFA
# (without "totp": MFA_REQUIRED).
mutation SignInWithTotp($passcode: String!) {
  createIamToken(input: {
    password: { userName: ${str(v.mfaUser.userName)}, password: ${str(v.mfaUser.password)}, domainName: ${str(v.domainName)} }
    totp: { userId: ${str(v.mfaUser.userId)}, passcode: $passcode }
    scope: ${scope}
    includeCatalog: false
  }) {
    value
    methods
    mfaAuthenticatedAt
    expiresAt
    user { name passwordExpiresAt }
    project { name }
  }
}

# IAM: rescope an unscoped federated
# (SAML / OIDC) token to a project.
mutation RescopeFederatedToken {
  createScopedIamToken(input: {
    token: ${str(v.federatedToken)}
    scope: ${scope}
    includeCatalog: false
  }) {
    value
    methods
    expiresAt
    user { name federation { identityProviderId protocolId groups { name } } }
    project { name }
    roles { name }
  }
}
`;
}

/** GraphiQL options beyond yoga's type that the inlined GraphiQL passes on to the GraphiQL component. */
type PageOptions = GraphiQLOptions & { variables?: string; visiblePlugin?: string };

export function pageOptions(demo: GraphiqlDemo | undefined): PageOptions {
  return {
    title: 'token-gateway',
    defaultQuery: exampleDocument(demo?.values ?? PLACEHOLDER_EXAMPLE_VALUES, demo !== undefined, demo?.broker),
    variables: JSON.stringify({ after: null, passcode: demo ? '' : 'YOUR_6_DIGIT_PASSCODE' }, null, 2),
    // Only the demo access token, and only while the emulator serves IDaaS; never persisted
    // (GraphiQL would otherwise keep whatever a user pastes in localStorage).
    headers: demo ? JSON.stringify({ Authorization: demo.authorization }, null, 2) : '{}',
    shouldPersistHeaders: false,
    visiblePlugin: 'Documentation Explorer',
    defaultEditorToolsVisibility: true,
  };
}

/** yoga's `graphiql` + `renderGraphiQL` options for the config (`graphiql: false` when GRAPHIQL=off). */
export function graphiqlOptions(
  config: Pick<GatewayConfig, 'graphiql' | 'graphiqlDemo'>,
): Pick<YogaServerOptions<Record<string, unknown>, Record<string, unknown>>, 'graphiql' | 'renderGraphiQL'> {
  if (!config.graphiql) return { graphiql: false };
  const options = pageOptions(config.graphiqlDemo);
  const json = JSON.stringify(options);
  // render-graphiql embeds the options as JSON inside a <script>: nothing may close it.
  if (json.includes('<')) throw new Error('GraphiQL options must not contain "<"');
  let page: Promise<string> | undefined;
  return {
    graphiql: options,
    // The options are fixed, so the page is too: render it on first use (it inlines all of
    // GraphiQL). The renderer module itself is imported on first use too: it is large, and a
    // static import would cost every start, GraphiQL on or off.
    renderGraphiQL: () => (page ??= import('@graphql-yoga/render-graphiql').then((m) => m.renderGraphiQL(options))),
  };
}
