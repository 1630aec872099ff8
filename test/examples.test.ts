// The typed example client (examples/client.ts) against a real HTTP gateway on the emulator,
// and its generated types kept in step with schema.graphql.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { main, optionsFromEnv, GatewayRequestError } from '../examples/client.ts';
import { DEMO_AUTHENTICATION_TOKENS, DEMO_CONSUMERS, DEMO_INSTANCE_ID } from '../src/emulator/fixtures.ts';
import { startHttpGateway, type HttpGateway } from './http-gateway.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));

describe('examples/client.ts', () => {
  let gw: HttpGateway;
  beforeAll(async () => {
    gw = await startHttpGateway();
  });
  afterAll(async () => gw?.close());

  test('signs in, lists every token page by page and mints a JWT', async () => {
    const lines: string[] = [];
    const result = await main({ ...optionsFromEnv({ GATEWAY_URL: gw.url }), pageSize: 10 }, (l) => lines.push(l));

    const expected = DEMO_AUTHENTICATION_TOKENS.filter(
      (t) => t.instanceId === DEMO_INSTANCE_ID && t.consumerId === DEMO_CONSUMERS.medium && t.credentialProviderId.startsWith('atp_demo01'),
    ).map((t) => t.authenticationTokenId);
    expect(result.iamUser).toBe('demo-user');
    expect(result.totalCount).toBe(25);
    expect(result.pages).toBe(3);
    expect(result.tokenIds).toEqual(expected);
    expect(result.jwt.authenticationTokenId).toBe(expected[0]);
    expect(result.jwt.value).toMatch(/^eyJ[\w-]+\.[\w-]+\.[\w-]+$/);

    const out = lines.join('\n');
    expect(out).toContain('IAM: signed in as demo-user');
    expect(out).toMatch(/page 3: atntkn_/);
    expect(out).toContain('25 of 25 tokens in 3 page(s)');
    // Secrets are masked in the output.
    expect(out).not.toContain(result.jwt.value);
  });

  test('a GraphQL error surfaces with its contract code', async () => {
    const err = await main({ ...optionsFromEnv({ GATEWAY_URL: gw.url }), idaasAccessToken: 'not-a-valid-token' }, () => {}).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(GatewayRequestError);
    expect((err as GatewayRequestError).codes).toEqual(['UNAUTHENTICATED']);
  });
});

test('examples/graphql-env.d.ts is up to date with schema.graphql (else: npm run examples:types)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'gql-tada-'));
  try {
    const out = join(dir, 'graphql-env.d.ts');
    await promisify(execFile)(join(ROOT, 'node_modules/.bin/gql.tada'), ['generate-output', '--tsconfig', 'examples/tsconfig.json', '--output', out], {
      cwd: ROOT,
      timeout: 60_000,
    });
    expect(await readFile(out, 'utf8')).toBe(await readFile(join(ROOT, 'examples/graphql-env.d.ts'), 'utf8'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
