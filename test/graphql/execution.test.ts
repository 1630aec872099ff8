// How documents execute (compiled once by graphql-jit, see src/compiled-execution.ts), as a
// client sees it: operations picked by name, variables per request, graphql-js's messages for
// bad variables, and faults while resolving masked as INTERNAL_SERVER_ERROR.
import { describe, expect, it } from 'vitest';
import {
  DEMO_AUTHENTICATION_TOKENS,
  DEMO_CONSUMERS,
  DEMO_CREDENTIAL_PROVIDERS,
  DEMO_INSTANCE_ID,
} from '../../src/emulator/fixtures.ts';
import { FULL, onlyError, useStack } from '../helpers.ts';

const I = DEMO_INSTANCE_ID;
const PROVIDER = DEMO_CREDENTIAL_PROVIDERS.jwt.identifier;
const idsOf = (consumerId: string) =>
  DEMO_AUTHENTICATION_TOKENS.filter((t) => t.instanceId === I && t.consumerId === consumerId && t.credentialProviderId)
    .map((t) => t.authenticationTokenId)
    .slice(0, 3);

const TWO_OPERATIONS = /* GraphQL */ `
  query Instance { instance(instanceId: "${I}") { instanceId } }
  query Tokens($consumerId: String!) {
    instance(instanceId: "${I}") {
      authenticationTokens(consumerId: $consumerId, credentialProviderIdentifier: "${PROVIDER}", first: 3) {
        nodes { authenticationTokenId }
      }
    }
  }
`;

const stack = useStack();

async function post(body: Record<string, unknown>) {
  const res = await stack.gateway.fetch('http://gateway.test/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json', ...FULL },
    body: JSON.stringify(body),
  });
  return { status: res.status, ...((await res.json()) as { data?: any; errors?: any[] }) };
}

describe('one document with several operations', () => {
  it('runs the operation named by operationName, each time', async () => {
    for (let round = 0; round < 2; round++) {
      const a = await post({ query: TWO_OPERATIONS, operationName: 'Instance' });
      expect(a).toMatchObject({ status: 200, data: { instance: { instanceId: I } } });
      expect(a.errors).toBeUndefined();
      const b = await post({ query: TWO_OPERATIONS, operationName: 'Tokens', variables: { consumerId: DEMO_CONSUMERS.small } });
      expect(b.errors).toBeUndefined();
      expect(b.data.instance.authenticationTokens.nodes.map((n: any) => n.authenticationTokenId)).toEqual(idsOf(DEMO_CONSUMERS.small));
    }
  });

  it('without operationName: BAD_USER_INPUT, nothing executed', async () => {
    const r = await post({ query: TWO_OPERATIONS, variables: { consumerId: DEMO_CONSUMERS.small } });
    expect(r.data ?? null).toBeNull();
    expect(r.errors).toHaveLength(1);
    expect(r.errors![0].message).toMatch(/operation/i);
    expect(r.errors![0].extensions.code).toBe('BAD_USER_INPUT');
    expect(stack.emulator.counters()['idaas.listAuthenticationTokens']?.requests ?? 0).toBe(0);
  });
});

describe('variables', () => {
  it('concurrent requests of one document each get the answer for their own variables', async () => {
    const consumers = [DEMO_CONSUMERS.small, DEMO_CONSUMERS.medium, DEMO_CONSUMERS.large];
    const results = await Promise.all(
      [...consumers, ...consumers].map((consumerId) => post({ query: TWO_OPERATIONS, operationName: 'Tokens', variables: { consumerId } })),
    );
    results.forEach((r, i) => {
      expect(r.errors).toBeUndefined();
      expect(r.data.instance.authenticationTokens.nodes.map((n: any) => n.authenticationTokenId)).toEqual(idsOf(consumers[i % 3]!));
    });
  });

  it('a variable of the wrong type: graphql-js message naming the variable, without its value', async () => {
    const r = await post({ query: TWO_OPERATIONS, operationName: 'Tokens', variables: { consumerId: { secret: 's3cr3t-value' } } });
    expect(r.data ?? null).toBeNull();
    const err = onlyError({ status: r.status, headers: new Headers(), data: r.data, errors: r.errors });
    expect(err.message).toBe('Variable "$consumerId" has an invalid value: String cannot represent a non string value.');
    expect(err.extensions.code).toBe('BAD_USER_INPUT');
    expect(JSON.stringify(r)).not.toContain('s3cr3t-value');
  });

  it('a missing required variable: BAD_USER_INPUT naming it', async () => {
    const r = await post({ query: TWO_OPERATIONS, operationName: 'Tokens' });
    expect(r.errors).toHaveLength(1);
    expect(r.errors![0].message).toMatch(/\$consumerId/);
    expect(r.errors![0].extensions.code).toBe('BAD_USER_INPUT');
  });
});

describe('faults while resolving a field', () => {
  it('a value a scalar cannot serialize: masked INTERNAL_SERVER_ERROR at its path, siblings kept, logged with the path', async () => {
    const token = DEMO_AUTHENTICATION_TOKENS.find((t) => t.consumerId === DEMO_CONSUMERS.small)!;
    stack.emulator.inject({
      route: 'idaas.listAuthenticationTokens',
      status: 200,
      body: { entities: [{ ...token, updateTime: 9e15 }], totalCount: 1 },
      times: 1,
    });
    stack.logs.length = 0;
    const r = await stack.gql(/* GraphQL */ `
      query {
        instance(instanceId: "${I}") {
          instanceId
          authenticationTokens(consumerId: "${DEMO_CONSUMERS.small}", credentialProviderIdentifier: "${PROVIDER}") {
            nodes { authenticationTokenId updatedAt }
          }
        }
      }
    `);
    const err = onlyError(r);
    expect(err).toMatchObject({ message: 'Unexpected error.', extensions: { code: 'INTERNAL_SERVER_ERROR' } });
    expect(err.path).toEqual(['instance', 'authenticationTokens', 'nodes', 0, 'updatedAt']);
    expect(r.data.instance).toEqual({ instanceId: I, authenticationTokens: null });
    const logged = stack.logs.map((l) => JSON.parse(l)).find((l) => l.msg === 'unexpected error while resolving a field');
    expect(logged).toMatchObject({ level: 50, path: 'instance.authenticationTokens.nodes.0.updatedAt' });
  });
});
