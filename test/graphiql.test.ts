// The GraphiQL page the gateway serves (no browser here: see test/browser/ for that).
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { parse, validate } from 'graphql';
import { schema } from '../src/schema/index.ts';
import { PLACEHOLDER_EXAMPLE_VALUES, exampleDocument, graphiqlOptions } from '../src/graphiql.ts';
import { DEMO_EXAMPLE_VALUES, graphiqlDemo } from '../src/emulator/demo-examples.ts';
import { DEMO_ACCESS_TOKENS, DEMO_IAM_FEDERATED, DEMO_IAM_USERS } from '../src/emulator/fixtures.ts';
import { authenticator } from 'otplib';
import { FULL, startStack, type Stack } from './helpers.ts';
import type { GatewayConfig } from '../src/config.ts';

const OPERATIONS = ['ListTokens', 'MintJwt', 'ObtainStsCredentials', 'SignIn', 'SignInWithTotp', 'RescopeFederatedToken'];

/** Every demo secret, none of which may be in a production page. */
const DEMO_SECRETS = [
  'demo-idaas-access-token',
  ...Object.values(DEMO_ACCESS_TOKENS).map((t) => t.token),
  DEMO_IAM_USERS.password.password,
  DEMO_IAM_USERS.mfa.password,
  DEMO_IAM_USERS.mfa.totpSecret,
  DEMO_IAM_FEDERATED.token,
];

async function getPage(stack: Stack) {
  const res = await stack.gateway.fetch('http://gateway.test/graphql', { headers: { accept: 'text/html' } });
  return { res, html: await res.text() };
}

describe('GraphiQL page', () => {
  const stacks: Stack[] = [];
  const start = async (overrides: Partial<GatewayConfig>) => {
    const s = await startStack(() => overrides);
    stacks.push(s);
    return s;
  };
  afterAll(async () => {
    await Promise.all(stacks.map((s) => s.close()));
  });

  test('demo mode: self-contained page with the example operations and the demo header', async () => {
    const stack = await start({ graphiqlDemo: graphiqlDemo() });
    const { res, html } = await getPage(stack);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(html).toContain('YogaGraphiQL.renderYogaGraphiQL'); // GraphiQL inlined, not from a CDN
    expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+stylesheet[^>]+href=["']?https?:/i);
    expect(html).not.toContain('unpkg.com');
    for (const op of OPERATIONS) expect(html).toContain(op);
    expect(html).toContain(DEMO_EXAMPLE_VALUES.instanceId);
    expect(html).toContain(`Bearer ${DEMO_ACCESS_TOKENS.full.token}`);
    // Rendered once, then reused.
    expect((await getPage(stack)).html).toBe(html);
  });

  test('production mode (graphiqlDemo false): placeholders, no demo secret anywhere in the page', async () => {
    const stack = await start({ graphiqlDemo: undefined });
    const { res, html } = await getPage(stack);
    expect(res.status).toBe(200);
    for (const op of OPERATIONS) expect(html).toContain(op);
    expect(html).toContain(PLACEHOLDER_EXAMPLE_VALUES.instanceId);
    for (const secret of DEMO_SECRETS) expect(html).not.toContain(secret);
  });

  test('broker demo: the demo caller’s JWT in the Headers tab instead of the access token, and the header comment says so', () => {
    const options = graphiqlOptions({ graphiql: true, graphiqlDemo: graphiqlDemo('eyJhbGciOiJSUzI1NiJ9.e30.c2ln') }).graphiql as {
      headers: string;
      defaultQuery: string;
    };
    expect(JSON.parse(options.headers)).toEqual({ Authorization: 'Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln' });
    expect(options.defaultQuery).toContain('broker mode');
    expect(JSON.stringify(options)).not.toContain(DEMO_ACCESS_TOKENS.full.token);
  });

  test('GRAPHIQL=off: GET /graphql with Accept: text/html does not serve GraphiQL', async () => {
    const stack = await start({ graphiql: false, graphiqlDemo: graphiqlDemo() });
    const { res, html } = await getPage(stack);
    expect(res.headers.get('content-type') ?? '').not.toMatch(/text\/html/);
    expect(html).not.toContain('GraphiQL');
    expect(html).not.toContain('demo-idaas-access-token');
    expect(graphiqlOptions({ graphiql: false, graphiqlDemo: graphiqlDemo() })).toEqual({ graphiql: false });
  });
});

describe('example operations', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack();
  });
  afterAll(async () => stack.close());

  test.each([true, false])('the document (demo %s) is valid against the schema', (demo) => {
    const doc = parse(exampleDocument(demo ? DEMO_EXAMPLE_VALUES : PLACEHOLDER_EXAMPLE_VALUES, demo));
    expect(validate(schema, doc)).toEqual([]);
    expect(doc.definitions.map((d) => ('name' in d ? d.name?.value : undefined))).toEqual(OPERATIONS);
  });

  test.each(OPERATIONS)('%s succeeds on the emulator with the demo values', async (operationName) => {
    const res = await stack.gateway.fetch('http://gateway.test/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json', ...FULL },
      body: JSON.stringify({
        query: exampleDocument(DEMO_EXAMPLE_VALUES, true),
        operationName,
        variables: { after: null, passcode: authenticator.generate(DEMO_IAM_USERS.mfa.totpSecret) },
      }),
    });
    const body = (await res.json()) as { data?: Record<string, unknown>; errors?: unknown };
    expect(body.errors).toBeUndefined();
    expect(Object.values(body.data ?? {}).every((v) => v !== null)).toBe(true);
  });
});
