// Broker mode's audit trail (AUDIT_LOG): one JSON line per minting decision and one per its
// outcome. Callers await write() before minting and before handing a credential out, so a
// line that cannot be written stops the mint. Credentials appear only as HMAC fingerprints.
import { close, openSync, write } from 'node:fs';
import { createHmac } from 'node:crypto';
import { promisify } from 'node:util';
import type { CedarAction, PolicyResource } from './policy.ts';

export interface AuditRecord {
  time: string;
  event: 'decision' | 'outcome';
  requestId: string;
  caller: { issuer: string; subject: string; groups: string[] };
  action: CedarAction;
  resource: PolicyResource;
  decision: 'allow' | 'deny';
  outcome: 'pending' | 'denied' | 'issued' | 'failed';
  errorCode?: string;
  upstreamRequestId?: string;
  expiresAt?: string;
  credentialFingerprint?: string;
}

const writeFd = promisify(write);
const closeFd = promisify(close);

type Sink = { kind: 'stdout' } | { kind: 'file'; fd: number };

export class AuditLog {
  readonly #sink: Sink;
  readonly #hmacKey: string;
  // Writes go one at a time: a short write is continued before the next line starts, so
  // concurrent requests never interleave within a line.
  #tail: Promise<void> = Promise.resolve();
  #closed = false;

  private constructor(sink: Sink, hmacKey: string) {
    this.#sink = sink;
    this.#hmacKey = hmacKey;
  }

  /** `-` = stdout; else a file opened for appending (throws a one-line Error if it cannot be opened). */
  static open(target: string, hmacKey: string): AuditLog {
    if (hmacKey.length < 32) throw new Error('AUDIT_HMAC_KEY must be at least 32 characters');
    if (target === '-') return new AuditLog({ kind: 'stdout' }, hmacKey);
    try {
      return new AuditLog({ kind: 'file', fd: openSync(target, 'a', 0o600) }, hmacKey);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      const why = e.code ? `${e.message.replace(/^[A-Z]+: /, '').replace(/, open .*$/, '')} (${e.code})` : e.message;
      throw new Error(`AUDIT_LOG ${target} cannot be opened for appending: ${why}`);
    }
  }

  /** Appends one JSON line; resolves once it is written (awaited write to the fd); rejects if it cannot be. */
  write(record: Omit<AuditRecord, 'time'>): Promise<void> {
    if (this.#closed) return Promise.reject(new Error('audit log is closed'));
    const line = Buffer.from(`${JSON.stringify(pick(record))}\n`, 'utf8');
    const done = this.#tail.then(() => this.#append(line));
    // A failed line rejects its own writer only; the next line still gets its try.
    this.#tail = done.catch(() => {});
    return done;
  }

  /** `hmac-sha256:<hex>` of the secret under the HMAC key. */
  fingerprint(secret: string): string {
    return `hmac-sha256:${createHmac('sha256', this.#hmacKey).update(secret, 'utf8').digest('hex')}`;
  }

  /** Waits for pending lines, then closes the file (stdout stays open). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#tail;
    if (this.#sink.kind === 'file') await closeFd(this.#sink.fd);
  }

  async #append(line: Buffer): Promise<void> {
    if (this.#sink.kind === 'stdout') {
      await new Promise<void>((resolve, reject) => {
        process.stdout.write(line, (err) => (err ? reject(err) : resolve()));
      });
      return;
    }
    let offset = 0;
    while (offset < line.length) {
      const { bytesWritten } = await writeFd(this.#sink.fd, line, offset, line.length - offset, null);
      offset += bytesWritten;
    }
  }
}

/** Only the listed fields reach the line, whatever object the caller passes: a wider object
 *  (say, one holding the issued credential) cannot leak through a spread. */
function pick(r: Omit<AuditRecord, 'time'>): AuditRecord {
  return {
    time: new Date().toISOString(),
    event: r.event,
    requestId: r.requestId,
    caller: { issuer: r.caller.issuer, subject: r.caller.subject, groups: [...r.caller.groups] },
    action: r.action,
    resource: { type: r.resource.type, id: r.resource.id, instanceId: r.resource.instanceId },
    decision: r.decision,
    outcome: r.outcome,
    errorCode: r.errorCode,
    upstreamRequestId: r.upstreamRequestId,
    expiresAt: r.expiresAt,
    credentialFingerprint: r.credentialFingerprint,
  };
}
