// A real HTTP smoke test: the gateway behind node:http on a real socket, the way `npm start`
// serves it, against the emulator. Only what a first user would try: a query and GraphiQL.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultConfig } from '../src/config.ts';
import { createGateway, type Gateway } from '../src/gateway.ts';
import { createLogger } from '../src/logger.ts';
import { startEmulator, type Emulator } from '../src/emulator/index.ts';
import {
  DEMO_ACCESS_TOKENS,
  DEMO_CONSUMERS,
  DEMO_CREDENTIAL_PROVIDERS,
  DEMO_INSTANCE_ID,
} from '../src/emulator/fixtures.ts';
import { listen, type Listening } from './http-gateway.ts';

let emulator: Emulator;
let gateway: Gateway;
let http: Listening;

beforeAll(async () => {
  emulator = await startEmulator({ port: 0 });
  const base = defaultConfig();
  gateway = createGateway(
    {
      ...base,
      idaas: { endpoint: emulator.url, instanceEndpoints: new Map() },
      iam: { endpoints: [{ name: 'emulator', url: emulator.url }] },
    },
    { logger: createLogger('silent') },
  );
  http = await listen(gateway);
});

afterAll(async () => {
  await http.close();
  await gateway.close();
  await emulator.close();
});

describe('smoke over a real socket', () => {
  it('answers a POSTed query with data from the upstream', async () => {
    const res = await fetch(http.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/graphql-response+json, application/json',
        authorization: `Bearer ${DEMO_ACCESS_TOKENS.full.token}`,
      },
      body: JSON.stringify({
        query: `query($i: String!, $c: String!, $p: String!) {
          instance(instanceId: $i) {
            instanceId
            authenticationTokens(consumerId: $c, credentialProviderIdentifier: $p, first: 2) {
              totalCount
              nodes { authenticationTokenId consumerId type createdAt }
            }
          }
        }`,
        variables: { i: DEMO_INSTANCE_ID, c: DEMO_CONSUMERS.small, p: DEMO_CREDENTIAL_PROVIDERS.jwt.identifier },
      }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/json/);
    const body = (await res.json()) as { data: any; errors?: unknown[] };
    expect(body.errors).toBeUndefined();
    expect(body.data.instance.instanceId).toBe(DEMO_INSTANCE_ID);
    expect(body.data.instance.authenticationTokens.totalCount).toBe(3);
    expect(body.data.instance.authenticationTokens.nodes).toHaveLength(2);
    expect(body.data.instance.authenticationTokens.nodes[0]).toMatchObject({ consumerId: DEMO_CONSUMERS.small, type: 'JWT' });
  });

  it('serves GraphiQL to a browser', async () => {
    const res = await fetch(http.url, { headers: { accept: 'text/html' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await res.text();
    expect(html).toMatch(/<html/i);
    expect(html.toLowerCase()).toContain('graphiql');
  });

  it('answers a query without Authorization with UNAUTHENTICATED, not a transport error', async () => {
    const res = await fetch(http.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({
        query: `{ instance(instanceId: "${DEMO_INSTANCE_ID}") { authenticationTokens(consumerId: "${DEMO_CONSUMERS.small}", credentialProviderIdentifier: "${DEMO_CREDENTIAL_PROVIDERS.jwt.identifier}") { totalCount } } }`,
      }),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { data: any; errors: { extensions: { code: string } }[] };
    expect(body.data.instance.authenticationTokens).toBeNull();
    expect(body.errors.map((e) => e.extensions.code)).toEqual(['UNAUTHENTICATED']);
  });
});
