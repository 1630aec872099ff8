// A typed token-gateway client: gql.tada types every document below from the gateway's
// schema (no code generation per query), and plain fetch sends it.
//
//   npm start                 # in another terminal: the gateway on its demo emulator
//   npm run example           # GATEWAY_URL=http://127.0.0.1:4000/graphql by default
//
// It signs in to IAM (createIamToken), lists an IDaaS consumer's authentication tokens page
// by page (following pageInfo.endCursor while hasNextPage), and mints the JWT of the first
// usable one. Every input defaults to the emulator's demo data; set the environment
// variables below to use your own. Secrets (tokens, JWTs) are never printed in full.
//
// PERSISTED=1 sends each document's SHA-256 hash instead of its text (trusted documents), for a
// gateway started with PERSISTED_OPERATIONS=only (or allow) and
// PERSISTED_OPERATIONS_FILE=examples/persisted-operations.json.
import { print } from 'graphql';
import { createHash } from 'node:crypto';
import type { TadaDocumentNode } from 'gql.tada';
import { pathToFileURL } from 'node:url';
import { graphql, readFragment, type ResultOf } from './graphql.ts';

export interface ExampleOptions {
  /** GATEWAY_URL */
  url: string;
  /** IDAAS_ACCESS_TOKEN: sent as `Authorization: Bearer …` to the IDaaS PAM operations. */
  idaasAccessToken: string;
  /** IDAAS_INSTANCE_ID, CONSUMER_ID, CREDENTIAL_PROVIDER */
  instanceId: string;
  consumerId: string;
  credentialProviderIdentifier: string;
  /** PAGE_SIZE: tokens per page (1-500). */
  pageSize: number;
  /** IAM_USER, IAM_PASSWORD, IAM_DOMAIN, IAM_PROJECT */
  iam: { userName: string; password: string; domainName: string; projectName: string };
  /** PERSISTED=1: send the documents' hashes instead of their text. */
  persisted?: boolean;
}

export function optionsFromEnv(env: NodeJS.ProcessEnv = process.env): ExampleOptions {
  return {
    url: env.GATEWAY_URL || 'http://127.0.0.1:4000/graphql',
    // The defaults are the emulator's demo data (see `npm start`'s output): not secrets.
    idaasAccessToken: env.IDAAS_ACCESS_TOKEN || 'demo-idaas-access-token-full',
    instanceId: env.IDAAS_INSTANCE_ID || 'idaas_demo2jvisn35ea5lmthk267a',
    consumerId: env.CONSUMER_ID || 'test_jwt_subject',
    credentialProviderIdentifier: env.CREDENTIAL_PROVIDER || 'demo_jwt_provider',
    pageSize: Number(env.PAGE_SIZE || 10),
    iam: {
      userName: env.IAM_USER || 'demo-user',
      password: env.IAM_PASSWORD || 'Demo-Passw0rd!',
      domainName: env.IAM_DOMAIN || 'demo-domain',
      projectName: env.IAM_PROJECT || 'eu-west-0',
    },
    persisted: ['1', 'on', 'true'].includes(env.PERSISTED ?? ''),
  };
}

// ------------------------------------------------------------------ documents

const SignIn = graphql(`
  mutation SignIn($input: CreateIamTokenInput!) {
    createIamToken(input: $input) {
      value
      methods
      expiresAt
      user { id name }
      project { id name }
    }
  }
`);

const TokenFields = graphql(`
  fragment TokenFields on AuthenticationToken {
    authenticationTokenId
    revoked
    expired
    expiresAt
  }
`);

const ListTokens = graphql(
  `
    query ListTokens($instanceId: String!, $consumerId: String!, $provider: String!, $first: Int!, $after: String) {
      instance(instanceId: $instanceId) {
        authenticationTokens(consumerId: $consumerId, credentialProviderIdentifier: $provider, first: $first, after: $after) {
          totalCount
          pageInfo { hasNextPage endCursor }
          nodes { ...TokenFields }
        }
      }
    }
  `,
  [TokenFields],
);

const MintJwt = graphql(`
  mutation MintJwt($input: ObtainJwtAuthenticationTokenInput!) {
    obtainJwtAuthenticationToken(input: $input) {
      authenticationToken { authenticationTokenId expiresAt }
      jwt { value claims }
    }
  }
`);

/**
 * The documents above as trusted documents: `npm run examples:persisted` (gql.tada generate
 * persisted) writes their text to examples/persisted-operations.json, keyed by its SHA-256. The
 * ids here are names only: the hash is that of `print(document)`, the text this client sends.
 */
export const persistedDocuments = [
  graphql.persisted('SignIn', SignIn),
  graphql.persisted('ListTokens', ListTokens),
  graphql.persisted('MintJwt', MintJwt),
];

// ------------------------------------------------------------------ transport

/** A GraphQL error answer, with the contract's `extensions.code` of each error. */
export class GatewayRequestError extends Error {
  constructor(
    readonly errors: { message: string; path?: (string | number)[]; extensions?: { code?: string } & Record<string, unknown> }[],
    readonly status: number,
  ) {
    super(errors.map((e) => `${e.extensions?.code ?? 'ERROR'}: ${e.message}`).join('; ') || `HTTP ${status}`);
  }

  get codes(): string[] {
    return this.errors.map((e) => e.extensions?.code ?? 'ERROR');
  }
}

export type Request = <Result, Variables>(
  document: TadaDocumentNode<Result, Variables>,
  variables: Variables,
  headers?: Record<string, string>,
) => Promise<Result>;

const hashes = new WeakMap<object, string>();

/** The SHA-256 (hex) of the text this client sends for a document: its key in a trusted-documents manifest. */
export function documentHash(document: TadaDocumentNode<any, any>): string {
  let hash = hashes.get(document);
  if (!hash) hashes.set(document, (hash = createHash('sha256').update(print(document)).digest('hex')));
  return hash;
}

/**
 * POSTs a typed document as JSON (with `persisted`, its hash instead); any GraphQL error throws
 * (this client wants all or nothing).
 */
export function createRequest(url: string, { persisted = false }: { persisted?: boolean } = {}): Request {
  return async (document, variables, headers = {}) => {
    const payload = persisted
      ? { variables, extensions: { persistedQuery: { version: 1, sha256Hash: documentHash(document) } } }
      : { query: print(document), variables };
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json', ...headers },
      body: JSON.stringify(payload),
    });
    const type = res.headers.get('content-type') ?? '';
    if (!/json/.test(type)) throw new Error(`${url} answered HTTP ${res.status} (${type || 'no content type'})`);
    const body = (await res.json()) as { data?: unknown; errors?: GatewayRequestError['errors'] };
    if (body.errors?.length || body.data == null) throw new GatewayRequestError(body.errors ?? [], res.status);
    return body.data as never;
  };
}

// ------------------------------------------------------------------ the example

export interface ExampleResult {
  iamUser: string;
  tokenIds: string[];
  totalCount: number;
  pages: number;
  jwt: { authenticationTokenId: string; value: string; claims: unknown };
}

const mask = (secret: string) => `${secret.slice(0, 12)}… (${secret.length} chars)`;

export async function main(options: ExampleOptions = optionsFromEnv(), log: (line: string) => void = console.log): Promise<ExampleResult> {
  const request = createRequest(options.url, { persisted: options.persisted });
  const idaas = { authorization: `Bearer ${options.idaasAccessToken}` };

  // 1. IAM sign-in: credentials go in the input, no gateway header needed.
  const { iam } = options;
  const signedIn = await request(SignIn, {
    input: {
      password: { userName: iam.userName, password: iam.password, domainName: iam.domainName },
      scope: { project: { name: iam.projectName, domain: { name: iam.domainName } } },
      includeCatalog: false,
    },
  });
  const iamToken = signedIn.createIamToken;
  if (!iamToken) throw new Error('createIamToken returned null');
  log(
    `IAM: signed in as ${iamToken.user.name} (${iamToken.methods.join('+')}) for project ` +
      `${iamToken.project?.name ?? '-'}, token ${mask(iamToken.value)} expires ${iamToken.expiresAt}`,
  );

  // 2. IDaaS PAM: every token of the consumer, page by page.
  type Token = ResultOf<typeof TokenFields>;
  const tokens: Token[] = [];
  let after: string | null = null;
  let totalCount = 0;
  let pages = 0;
  for (;;) {
    const page: ResultOf<typeof ListTokens> = await request(
      ListTokens,
      {
        instanceId: options.instanceId,
        consumerId: options.consumerId,
        provider: options.credentialProviderIdentifier,
        first: options.pageSize,
        after,
      },
      idaas,
    );
    const connection = page.instance.authenticationTokens;
    if (!connection) throw new Error('authenticationTokens returned null');
    const nodes = connection.nodes.map((n) => readFragment(TokenFields, n));
    tokens.push(...nodes);
    totalCount = connection.totalCount;
    pages += 1;
    log(`IDaaS: page ${pages}: ${nodes.map((t) => t.authenticationTokenId).join(', ') || '(empty)'}`);
    if (!connection.pageInfo.hasNextPage || !connection.pageInfo.endCursor) break;
    after = connection.pageInfo.endCursor;
  }
  log(`IDaaS: ${tokens.length} of ${totalCount} tokens in ${pages} page(s)`);

  // 3. Mint the JWT of the first token that is neither revoked nor expired.
  const usable = tokens.find((t) => !t.revoked && !t.expired);
  if (!usable) throw new Error(`consumer ${options.consumerId} has no usable authentication token`);
  const minted = await request(
    MintJwt,
    {
      input: {
        instanceId: options.instanceId,
        consumerId: options.consumerId,
        authenticationTokenId: usable.authenticationTokenId,
        credentialProviderIdentifier: options.credentialProviderIdentifier,
      },
    },
    idaas,
  );
  const payload = minted.obtainJwtAuthenticationToken;
  if (!payload) throw new Error('obtainJwtAuthenticationToken returned null');
  log(`IDaaS: JWT for ${payload.authenticationToken.authenticationTokenId}: ${mask(payload.jwt.value)}, claims ${JSON.stringify(payload.jwt.claims)}`);

  return {
    iamUser: iamToken.user.name,
    tokenIds: tokens.map((t) => t.authenticationTokenId),
    totalCount,
    pages,
    jwt: { authenticationTokenId: payload.authenticationToken.authenticationTokenId, value: payload.jwt.value, claims: payload.jwt.claims },
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    console.error(err instanceof GatewayRequestError ? `gateway error: ${err.message}` : err);
    process.exit(1);
  });
}
