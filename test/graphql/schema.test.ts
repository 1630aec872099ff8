// The committed SDL (schema.graphql) is what frontends and reviewers read: it must be exactly
// what the code builds.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { printedSchema } from '../../src/schema/index.ts';

const SCHEMA_FILE = new URL('../../schema.graphql', import.meta.url);

describe('schema.graphql', () => {
  it('matches the schema the code builds (run `npm run schema` after changing the schema)', () => {
    const committed = readFileSync(SCHEMA_FILE, 'utf8');
    // toBe, so that a failure shows the diff: expected is what the code builds.
    expect(committed, 'schema.graphql is out of date: run `npm run schema` and commit the result').toBe(printedSchema());
  });

  it('names the contract’s minimum types and fields', () => {
    const sdl = printedSchema();
    for (const line of [
      'interface Node',
      'interface Credential',
      'scalar DateTime',
      'scalar JSON',
      'type Instance implements Node',
      'type AuthenticationTokenConnection',
      'type CloudAccountRole implements Node',
      'type CloudAccountRoleAccessCredential implements Credential',
      'type Jwt',
      'input ObtainJwtAuthenticationTokenInput',
      'type ObtainJwtAuthenticationTokenPayload',
      'input ObtainCloudAccountRoleAccessCredentialInput',
      'type ObtainCloudAccountRoleAccessCredentialPayload',
      'obtainJwtAuthenticationToken(input: ObtainJwtAuthenticationTokenInput!): ObtainJwtAuthenticationTokenPayload\n',
      'obtainCloudAccountRoleAccessCredential(input: ObtainCloudAccountRoleAccessCredentialInput!): ObtainCloudAccountRoleAccessCredentialPayload\n',
      'instance(instanceId: String!): Instance!',
      'node(id: ID!): Node\n',
    ]) {
      expect(sdl).toContain(line);
    }
    expect(sdl).toMatch(/type AuthenticationToken implements (Credential & Node|Node & Credential)/);
    expect(sdl).toMatch(/\): AuthenticationTokenConnection\n/);
  });
});
