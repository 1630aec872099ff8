// Opaque Relay cursors over the upstream's nextToken. A cursor says where its edge sits:
// in the page fetched with `p` (null: the first page) and size `s`, at offset `o`; or, for
// the last edge of a page, just the page after it (`o` = -1). It is HMAC-signed together
// with the instance and the filters, so a forged, tampered or foreign cursor is refused.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { badInput } from '../errors.ts';

export interface CursorPosition {
  /** Upstream nextToken that fetches the page holding the edge; null for the first page. */
  p: string | null;
  /** maxResults that page was fetched with (offsets are only stable for the same size). */
  s: number;
  /** Offset of the edge in that page; -1 when the cursor points at the page's start. */
  o: number;
}

const VERSION = 'v1';

export class CursorCodec {
  readonly #key: Buffer;

  constructor(secret?: string) {
    this.#key = secret ? Buffer.from(secret, 'utf8') : randomBytes(32);
  }

  encode(pos: CursorPosition, binding: readonly unknown[]): string {
    const payload = Buffer.from(JSON.stringify([pos.p, pos.s, pos.o])).toString('base64url');
    return `${payload}.${this.sign(payload, binding)}`;
  }

  decode(cursor: string, binding: readonly unknown[]): CursorPosition {
    const invalid = () =>
      badInput('The `after` cursor is not valid for this connection: it was altered, or it belongs to another instance or other filters.');
    const dot = cursor.indexOf('.');
    if (dot <= 0 || cursor.length > 4096) throw invalid();
    const payload = cursor.slice(0, dot);
    // Compared as text: base64url's last character has spare bits, so decoded bytes could
    // match for two different strings.
    const given = Buffer.from(cursor.slice(dot + 1));
    const expected = Buffer.from(this.sign(payload, binding));
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw invalid();
    try {
      const [p, s, o] = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as unknown[];
      if ((p === null || typeof p === 'string') && Number.isInteger(s) && Number.isInteger(o)) {
        return { p, s: s as number, o: o as number };
      }
    } catch {
      // fall through: a signed but unreadable payload can only come from another version
    }
    throw invalid();
  }

  private sign(payload: string, binding: readonly unknown[]): string {
    return createHmac('sha256', this.#key)
      .update(`${VERSION}\n${payload}\n${JSON.stringify(binding)}`)
      .digest()
      .subarray(0, 16)
      .toString('base64url');
  }
}
