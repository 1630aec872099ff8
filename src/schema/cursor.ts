// Opaque Relay cursors over the upstream's nextToken. A cursor says where its edge sits:
// in the page fetched with `p` (null: the first page) and size `s`, at offset `o`; or, for
// the last edge of a page, just the page after it (`o` = -1). It is HMAC-signed together
// with the instance and the filters, so a forged, tampered or foreign cursor is refused.
//
// The key: CURSOR_SECRET; else, with REDIS_URL, one random key shared by every replica
// (src/shared/cursor-key.ts); else a random key of this process. A codec signs with one key and
// accepts the few it used before (`adopt`), so a replica that switches to the shared key keeps
// accepting the cursors it made with its own.
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
/** Keys a codec still accepts after adopting newer ones (the signing key included). */
const MAX_KEYS = 4;

export class CursorCodec {
  /** The signing key first, then earlier ones, still accepted. */
  #keys: Buffer[];

  constructor(secret?: string | Buffer) {
    this.#keys = [typeof secret === 'string' ? Buffer.from(secret, 'utf8') : (secret ?? randomBytes(32))];
  }

  /** The key cursors are signed with now. */
  get key(): Buffer {
    return this.#keys[0]!;
  }

  /** Signs with `key` from now on; cursors signed with the previous keys stay valid. */
  adopt(key: Buffer): void {
    if (key.equals(this.key)) return;
    this.#keys = [key, ...this.#keys.filter((k) => !k.equals(key))].slice(0, MAX_KEYS);
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
    const signedByUs = this.#keys.some((key) => {
      const expected = Buffer.from(this.sign(payload, binding, key));
      return given.length === expected.length && timingSafeEqual(given, expected);
    });
    if (!signedByUs) throw invalid();
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

  private sign(payload: string, binding: readonly unknown[], key = this.key): string {
    return createHmac('sha256', key)
      .update(`${VERSION}\n${payload}\n${JSON.stringify(binding)}`)
      .digest()
      .subarray(0, 16)
      .toString('base64url');
  }
}
