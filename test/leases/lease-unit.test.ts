// The lease's arithmetic, without sockets: the failures that may pass, the real expiry, the backoff.
import { describe, expect, it } from 'vitest';
import { GatewayError, UpstreamError } from '../../src/errors.ts';
import { backoffMs, effectiveExpiry, mayPass } from '../../src/leases/lease.ts';
import { originAllowed } from '../../src/leases/websocket.ts';

const upstream = (code: ConstructorParameters<typeof UpstreamError>[1], status?: number) =>
  new UpstreamError('x', code, { service: 'idaas', ...(status ? { status } : {}) });

describe('mayPass', () => {
  it.each([
    ['UPSTREAM_UNAVAILABLE (503, connection errors, an open circuit)', upstream('UPSTREAM_UNAVAILABLE', 503), true],
    ['UPSTREAM_TIMEOUT', upstream('UPSTREAM_TIMEOUT'), true],
    ['RATE_LIMITED (429)', upstream('RATE_LIMITED', 429), true],
    ['UPSTREAM_ERROR with a 500', upstream('UPSTREAM_ERROR', 500), true],
    ['UPSTREAM_ERROR without a status (an unreadable answer)', upstream('UPSTREAM_ERROR'), false],
    ['UNAUTHENTICATED (401)', upstream('UNAUTHENTICATED', 401), false],
    ['FORBIDDEN (403)', upstream('FORBIDDEN', 403), false],
    ['NOT_FOUND (404)', upstream('NOT_FOUND', 404), false],
    ['BAD_USER_INPUT (400)', upstream('BAD_USER_INPUT', 400), false],
    ['FORBIDDEN by the policy', new GatewayError('no', 'FORBIDDEN', { reason: 'POLICY' }), false],
    ['the audit log unavailable', new GatewayError('no', 'INTERNAL_SERVER_ERROR', { reason: 'AUDIT_UNAVAILABLE' }), false],
  ])('%s: %s', (_name, error, expected) => {
    expect(mayPass(error)).toBe(expected);
  });
});

describe('effectiveExpiry', () => {
  const at = (s: string) => new Date(s);
  it('is the earlier of the credential expiry and the STS token expiration', () => {
    const sts = { accessKeyId: 'a', accessKeySecret: 'b', securityToken: 'c' };
    expect(
      effectiveExpiry({ expiresAt: at('2030-01-01T01:00:00Z'), alibabaCloudStsToken: { ...sts, expiration: at('2030-01-01T00:30:00Z') }, awsStsToken: null }),
    ).toBe(at('2030-01-01T00:30:00Z').getTime());
    expect(
      effectiveExpiry({ expiresAt: at('2030-01-01T00:10:00Z'), alibabaCloudStsToken: { ...sts, expiration: at('2030-01-01T00:30:00Z') }, awsStsToken: null }),
    ).toBe(at('2030-01-01T00:10:00Z').getTime());
    expect(effectiveExpiry({ expiresAt: at('2030-01-01T00:10:00Z'), alibabaCloudStsToken: null, awsStsToken: null })).toBe(at('2030-01-01T00:10:00Z').getTime());
  });
});

describe('backoffMs', () => {
  it('grows from a twentieth of the window, is capped at a quarter of it, half random', () => {
    expect(backoffMs(1, 1_000, () => 1)).toBe(100);
    expect(backoffMs(1, 1_000, () => 0)).toBe(50);
    expect(backoffMs(2, 1_000, () => 1)).toBe(200);
    expect(backoffMs(5, 1_000, () => 1)).toBe(250);
    // A one-hour credential renewed at 40 min: 2 s first, a minute at most.
    expect(backoffMs(1, 20 * 60_000, () => 1)).toBe(2_000);
    expect(backoffMs(10, 20 * 60_000, () => 1)).toBe(60_000);
  });
});

describe('originAllowed (WebSocket upgrades)', () => {
  it.each([
    [undefined, true],
    ['http://127.0.0.1:4000', true],
    ['https://127.0.0.1:4000', true],
    ['https://app.example.com', true],
    ['https://evil.example.com', false],
    ['http://127.0.0.1:4001', false],
    ['null', false],
  ])('Origin %s: %s', (origin, expected) => {
    expect(originAllowed(origin, '127.0.0.1:4000', ['https://app.example.com'])).toBe(expected);
  });

  it('CORS_ORIGINS=* allows any', () => {
    expect(originAllowed('https://evil.example.com', '127.0.0.1:4000', ['*'])).toBe(true);
  });
});
