// GraphiQL, served by the gateway itself, offline (no CDN): a small page (a few KB: the
// options, the boot script) at /graphql, and GraphiQL's script, stylesheet, favicon and Monaco
// workers as separate files under /graphql/assets/, named after a hash of their content,
// cached by browsers for a year (`immutable`) and sent compressed (src/graphiql/assets.ts).
// The files come from the GraphiQL build inside @graphql-yoga/render-graphiql (whose own
// renderer would inline all of it, 9 MB, into every page). While introspection is on, the
// schema's introspection comes as such a file too, so that a reload fetches nothing but
// the page.
//
// The default query is one document of named example operations. With a demo (only while
// the embedded emulator serves IDaaS PAM) it is filled with the emulator's demo ids and
// credentials and a demo `Authorization` header; otherwise it carries placeholders only,
// and no demo secret is ever put in the page. The page itself is sent `no-store` (it may
// carry the demo header), like every GraphQL answer.
import { introspectionFromSchema } from 'graphql';
import type { GraphiQLOptions, Plugin, YogaServerOptions } from 'graphql-yoga';
import type { GatewayConfig } from './config.ts';
import { schema } from './schema/index.ts';
import { graphiqlAssets, memoryAsset, type Asset, type AssetNames, type Encoding } from './graphiql/assets.ts';

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

# A lease: a fresh STS credential before the
# current one expires, for as long as this
# runs (over SSE; ■ stops it).
subscription LeaseCredential {
  cloudAccountRoleCredentialLease(input: {
    instanceId: ${str(v.instanceId)}
    cloudAccountRoleExternalId: ${str(v.alibabaRoleExternalId)}
    durationSeconds: 900
  }) {
    sequence
    renewsAt
    accessCredential {
      expiresAt
      alibabaCloudStsToken { accessKeyId }
    }
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
    // GraphiQL streams subscriptions as a GET (SSE), which the CSRF prevention refuses without
    // this header; GraphiQL's own page may send it, a cross-site page cannot.
    additionalHeaders: { 'x-graphql-yoga-csrf': 'graphiql' },
    visiblePlugin: 'Documentation Explorer',
    defaultEditorToolsVisibility: true,
  };
}

/** Where the page's files are served: beside the GraphQL endpoint, never equal to it. */
export const GRAPHIQL_ASSETS_PATH = '/graphql/assets/';
export const IMMUTABLE = 'public, max-age=31536000, immutable';

type GraphiqlConfig = Pick<GatewayConfig, 'graphiql' | 'graphiqlDemo'> & Partial<Pick<GatewayConfig, 'introspection'>>;

/** The global the schema file sets (see schemaAsset). */
const SCHEMA_GLOBAL = 'TOKEN_GATEWAY_SCHEMA';
let schemaFile: Asset | undefined;

/**
 * The schema's introspection (what GraphiQL would ask for, descriptions included), as a
 * script that sets a global: GraphiQL is given the schema and sends no introspection query.
 * Served only while introspection is on; the schema is fixed, and so is the file.
 */
function schemaAsset(): Asset {
  return (schemaFile ??= memoryAsset('schema', 'js', `self.${SCHEMA_GLOBAL}=${JSON.stringify(introspectionFromSchema(schema))};\n`));
}

/** The files the gateway serves under GRAPHIQL_ASSETS_PATH for this config. */
async function assetsFor(config: GraphiqlConfig): Promise<{ names: AssetNames; schema?: Asset; get(name: string): Asset | undefined }> {
  const files = await graphiqlAssets();
  const schema = config.introspection ? schemaAsset() : undefined;
  return { names: files.names, schema, get: (name) => (schema?.name === name ? schema : files.get(name)) };
}

const escapeHtml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** The options as JSON to put inside a <script>: nothing in them may close it. */
function optionsJson(options: PageOptions): string {
  const json = JSON.stringify(options);
  if (json.includes('<')) throw new Error('GraphiQL options must not contain "<"');
  return json;
}

/**
 * The page: render-graphiql's, with its inlined parts replaced by references to the files.
 * Plain classic scripts, run in order; Monaco's workers are same-origin URLs (module workers).
 */
export function renderPage(options: PageOptions, names: AssetNames, schema?: string): string {
  const json = optionsJson(options);
  const url = (name: string) => GRAPHIQL_ASSETS_PATH + name;
  const workers = JSON.stringify({
    editorWorkerService: url(names.workers.editorWorkerService),
    json: url(names.workers.json),
    graphql: url(names.workers.graphql),
  });
  const props = schema ? `Object.assign(${json}, { schema: self.${SCHEMA_GLOBAL} })` : json;
  return `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <title>${escapeHtml(options.title ?? 'GraphiQL')}</title>
    <link rel="icon" href="${url(names.favicon)}" />
    <link rel="stylesheet" href="${url(names.stylesheet)}" />
  </head>
  <body id="body" class="no-focus-outline">
    <noscript>You need to enable JavaScript to run this app.</noscript>
    <div id="root"></div>
    <script>
      {
        const workers = ${workers};
        self.MonacoEnvironment = { globalAPI: false, getWorkerUrl: (moduleId, label) => workers[label] };
      }
    </script>
    <script src="${url(names.script)}"></script>
${schema ? `    <script src="${url(schema)}"></script>\n` : ''}    <script>
      YogaGraphiQL.renderYogaGraphiQL(document.querySelector('#root'), ${props});
    </script>
  </body>
</html>
`;
}

/** yoga's `graphiql` + `renderGraphiQL` options for the config (`graphiql: false` when GRAPHIQL=off). */
export function graphiqlOptions(
  config: GraphiqlConfig,
): Pick<YogaServerOptions<Record<string, unknown>, Record<string, unknown>>, 'graphiql' | 'renderGraphiQL'> {
  if (!config.graphiql) return { graphiql: false };
  const options = pageOptions(config.graphiqlDemo);
  optionsJson(options); // throws at start-up, not on the first page
  let page: Promise<string> | undefined;
  return {
    graphiql: options,
    // The options are fixed, so the page is too: rendered on first use (which loads, or reads
    // the build's list of, GraphiQL's files: nothing of it at start-up).
    renderGraphiQL: () => {
      page ??= assetsFor(config).then((a) => renderPage(options, a.names, a.schema?.name));
      page.catch(() => (page = undefined));
      return page;
    },
  };
}

/** The encoding to send: brotli if accepted, else gzip, else none (q=0 refuses; `*` accepts). */
export function chooseEncoding(acceptEncoding: string | null): Encoding | undefined {
  if (!acceptEncoding) return undefined;
  const q = new Map<string, number>();
  for (const part of acceptEncoding.toLowerCase().split(',')) {
    const [coding, ...params] = part.split(';').map((p) => p.trim());
    if (!coding) continue;
    const qv = params.find((p) => p.startsWith('q='));
    const value = qv ? Number(qv.slice(2)) : 1;
    q.set(coding === 'x-gzip' ? 'gzip' : coding, Number.isNaN(value) ? 0 : value);
  }
  const accepts = (coding: string) => (q.get(coding) ?? q.get('*') ?? 0) > 0;
  return accepts('br') ? 'br' : accepts('gzip') ? 'gzip' : undefined;
}

/**
 * Serves the page's files: GET/HEAD GRAPHIQL_ASSETS_PATH<name>, `immutable` for a year, the
 * encoding chosen from Accept-Encoding (Vary), an ETag; any other name under the path is a 404.
 * Nothing (every request passes through) with GRAPHIQL=off.
 */
export function useGraphiqlAssets(config: GraphiqlConfig): Plugin {
  if (!config.graphiql) return {};
  /** Our answers: the gateway's onResponse marks every answer no-store; these stay cacheable. */
  const cacheable = new WeakSet<Response>();
  return {
    onRequest({ request, url, fetchAPI, endResponse }) {
      if (request.method !== 'GET' && request.method !== 'HEAD') return;
      if (!url.pathname.startsWith(GRAPHIQL_ASSETS_PATH)) return;
      const name = url.pathname.slice(GRAPHIQL_ASSETS_PATH.length);
      return assetsFor(config).then(async (assets) => {
        const asset = assets.get(name);
        if (!asset) return endResponse(new fetchAPI.Response('Not Found', { status: 404, headers: { 'content-type': 'text/plain; charset=utf-8' } }));
        const encoding = chooseEncoding(request.headers.get('accept-encoding'));
        const headers: Record<string, string> = {
          'content-type': asset.type,
          'cache-control': IMMUTABLE,
          etag: `W/"${asset.sha256}"`,
          vary: 'Accept-Encoding',
        };
        let response: Response;
        if (request.headers.get('if-none-match')?.includes(`"${asset.sha256}"`)) {
          response = new fetchAPI.Response(null, { status: 304, headers });
        } else {
          const body = await asset.body(encoding);
          if (encoding) headers['content-encoding'] = encoding;
          headers['content-length'] = String(body.byteLength);
          response = new fetchAPI.Response(request.method === 'HEAD' ? null : (body as Uint8Array<ArrayBuffer>), { status: 200, headers });
        }
        cacheable.add(response);
        endResponse(response);
      });
    },
    onResponse({ response }) {
      if (cacheable.has(response)) response.headers.set('cache-control', IMMUTABLE);
    },
  };
}
