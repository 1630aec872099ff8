// The upstream's side of paging. The gateway has its own cursor (src/schema/cursor.ts
// CursorCodec, src/schema/pagination.ts TokenFilter) and must treat these tokens as opaque,
// so the emulator keeps a separate implementation under separate names.
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { invalidRequest } from './params.ts';

/** The filters of one ListAuthenticationTokens query; a nextToken is only good for the same ones. */
export interface EmulatorTokenQuery {
  instanceId: string;
  consumerId: string;
  credentialProviderIdentifier: string;
  revoked: boolean | undefined;
  expired: boolean | undefined;
}

/**
 * Opaque, HMAC-signed page tokens: `NT` + base64url({a: last position, f: query hash}) +
 * `.` + signature. Bound to the query's filters (instance included), so a token replayed
 * with other filters, forged or edited is a 400 rather than a silently wrong page.
 */
export class EmulatorNextTokenCodec {
  private readonly key = randomBytes(32);

  encode(after: number, query: EmulatorTokenQuery): string {
    const payload = Buffer.from(JSON.stringify({ a: after, f: queryHash(query) })).toString('base64url');
    return `NT${payload}.${this.sign(payload)}`;
  }

  /** The position the token continues after. */
  decode(token: string, query: EmulatorTokenQuery): number {
    const m = /^NT([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)$/.exec(token);
    if (!m || !safeEqual(m[2]!, this.sign(m[1]!))) throw invalidRequest('The nextToken is invalid.');
    const { a, f } = JSON.parse(Buffer.from(m[1]!, 'base64url').toString('utf8')) as { a: number; f: string };
    if (f !== queryHash(query)) {
      throw invalidRequest('The nextToken does not belong to this query; repeat the query with the same filters.');
    }
    return a;
  }

  private sign(payload: string): string {
    return createHmac('sha256', this.key).update(payload).digest('base64url').slice(0, 32);
  }
}

function queryHash(q: EmulatorTokenQuery): string {
  const { instanceId, consumerId, credentialProviderIdentifier: provider, revoked, expired } = q;
  const canonical = JSON.stringify([instanceId, consumerId, provider, revoked ?? null, expired ?? null]);
  return createHash('sha256').update(canonical).digest('base64url').slice(0, 16);
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
