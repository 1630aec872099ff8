// Bad configuration, read in-process: loadConfig() (the first thing `npm start` does) throws
// one ConfigError that lists every problem, one line each, naming the setting. The exit path
// (the process printing those lines and exiting before it listens) is tested once, in a real
// process: server.test.ts.
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.ts';

/** What spawn-gateway.ts's start() gives every process besides the test's settings. */
const BASE = { HOST: '127.0.0.1', LOG_LEVEL: 'info' };

/** The problems loadConfig() reports for these settings, asserting it refuses them. */
function problems(env: Record<string, string>): string[] {
  let error: unknown;
  try {
    loadConfig({ ...BASE, ...env });
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(ConfigError);
  const { problems, message } = error as ConfigError;
  // What server.ts prints after "token-gateway: ": a header, then one line per problem.
  expect(message.split('\n')).toEqual(['invalid configuration:', ...problems.map((p) => `  - ${p}`)]);
  return problems;
}

const naming = (list: string[], pattern: RegExp | string) => list.filter((p) => (typeof pattern === 'string' ? p.includes(pattern) : pattern.test(p)));

describe('loadConfig() refuses bad configuration', () => {
  it('(the settings below are otherwise fine: these load)', () => {
    expect(loadConfig({ ...BASE, PORT: '0' }).port).toBe(0);
    const production = loadConfig({ ...BASE, PORT: '0', EMULATOR: 'off', IDAAS_ENDPOINT: 'https://idaas.example', IAM_ENDPOINTS: 'eu-west-0=https://iam.example' });
    expect(production.idaas.endpoint).toBe('https://idaas.example');
    expect(production.iam.endpoints).toEqual([{ name: 'eu-west-0', url: 'https://iam.example' }]);
  });

  it('PORT=abc → one problem, naming PORT', () => {
    expect(problems({ PORT: 'abc' })).toEqual([expect.stringMatching(/^PORT: /)]);
  });

  it('three problems → one line for each', () => {
    const found = problems({ PORT: 'abc', MAX_DEPTH: '0', LOG_LEVEL: 'loud' });
    expect(found).toHaveLength(3);
    for (const name of ['PORT', 'MAX_DEPTH', 'LOG_LEVEL']) expect(naming(found, name), name).toHaveLength(1);
  });

  it('EMULATOR=off without IDAAS_ENDPOINT / IAM_ENDPOINTS → one line for each missing upstream', () => {
    const found = problems({ PORT: '0', EMULATOR: 'off' });
    expect(found).toHaveLength(2);
    expect(naming(found, /IDAAS_ENDPOINT.*required/)).toHaveLength(1);
    expect(naming(found, /IAM_ENDPOINTS.*required/)).toHaveLength(1);
  });

  it('an upstream URL that is not http(s) → one line naming it', () => {
    const found = problems({ PORT: '0', EMULATOR: 'off', IDAAS_ENDPOINT: 'ftp://idaas.example', IAM_ENDPOINTS: 'eu-west-0=https://iam.example' });
    expect(found).toHaveLength(1);
    expect(naming(found, /IDAAS_ENDPOINT.*http/)).toHaveLength(1);
  });

  it.for<[string, Record<string, string>, string]>([
    ['IDAAS_ENDPOINT', { IDAAS_ENDPOINT: 'not a url' }, 'IDAAS_ENDPOINT'],
    ['IAM_ENDPOINTS', { IAM_ENDPOINTS: 'eu-west-0=https://iam.example,bad entry' }, '"bad entry"'],
    ['IDAAS_INSTANCE_ENDPOINTS', { IDAAS_INSTANCE_ENDPOINTS: 'idaas_x=::nope::' }, 'idaas_x'],
    ['OTEL_EXPORTER_OTLP_ENDPOINT', { OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' }, 'OTEL_EXPORTER_OTLP_ENDPOINT'],
  ])('an unparsable URL in %s → one line naming it', ([name, env, named]) => {
    const found = problems({ PORT: '0', ...env });
    expect(found).toHaveLength(1);
    expect(found[0]).toMatch(new RegExp(`^${name}: `));
    expect(naming(found, named)).toHaveLength(1);
  });

  it('REDIS_URL: redis:// or rediss:// only, and the problem line never repeats the URL (it may carry a password)', () => {
    expect(loadConfig({ ...BASE, REDIS_URL: 'redis://:s3cret@redis.example:6379/2' }).redisUrl).toBe('redis://:s3cret@redis.example:6379/2');
    expect(loadConfig({ ...BASE, REDIS_URL: 'rediss://redis.example' }).redisUrl).toBe('rediss://redis.example');
    expect(loadConfig({ ...BASE }).redisUrl).toBeUndefined();
    const found = problems({ REDIS_URL: 'http://:s3cret@redis.example:6379' });
    expect(found).toEqual(['REDIS_URL: must be a redis:// or rediss:// URL']);
  });

  it('every problem is reported in one go, the EMULATOR=off requirements included', () => {
    const found = problems({ PORT: 'abc', EMULATOR: 'off' });
    expect(found).toHaveLength(3);
    for (const name of ['PORT', 'IDAAS_ENDPOINT', 'IAM_ENDPOINTS']) expect(naming(found, name), name).toHaveLength(1);
  });
});
