// The connection to Redis (REDIS_URL) and whether this replica can use it now.
//
// No request ever waits on Redis for long: every command times out after COMMAND_TIMEOUT_MS,
// commands are refused at once while the connection is down (no offline queue), and the
// client reconnects in the background with backoff. The status is "ok" while connected and
// answering; "unavailable" from a lost connection or a command that failed on a live one (a
// timeout: then a PING a second probes it) until it answers again. Each change is one log line
// and the `redis_unavailable` gauge; the stores fall back to this replica's memory meanwhile.
import { Redis } from 'ioredis';
import type { Logger } from 'pino';

export type RedisStatus = 'ok' | 'unavailable';

export const COMMAND_TIMEOUT_MS = 200;
const CONNECT_TIMEOUT_MS = 1_000;
const PROBE_EVERY_MS = 1_000;
/** Reconnect delays: 200 ms, 400 ms, … up to 2 s. */
const reconnectDelay = (attempt: number) => Math.min(100 * 2 ** Math.min(attempt, 5), 2_000);

export class RedisLink {
  readonly client: Redis;
  /** Subscriber connection (pub/sub), made on first use. */
  #subscriber: Redis | undefined;
  #status: RedisStatus | undefined;
  /** A command failed on a live connection (a timeout): unavailable until a PING answers. */
  #degraded = false;
  #lastError: string | undefined;
  #probe: NodeJS.Timeout | undefined;
  #closed = false;
  readonly #listeners: ((status: RedisStatus) => void)[] = [];

  constructor(
    url: string,
    private readonly logger: Logger,
  ) {
    this.client = new Redis(url, {
      commandTimeout: COMMAND_TIMEOUT_MS,
      connectTimeout: CONNECT_TIMEOUT_MS,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      retryStrategy: reconnectDelay,
      lazyConnect: true,
    });
    this.client.on('ready', () => {
      this.#degraded = false;
      this.#update();
    });
    for (const event of ['close', 'end', 'reconnecting']) this.client.on(event, () => this.#update());
    // Without a listener, ioredis prints every connection error; the transition line says it once.
    this.client.on('error', (e: Error) => (this.#lastError = e.message));
  }

  /** Connects, waiting at most `timeoutMs`; reconnects in the background after that. */
  async connect(timeoutMs: number): Promise<RedisStatus> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.client.connect().catch((e: Error) => void (this.#lastError = e.message)),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs))),
    ]);
    clearTimeout(timer);
    this.#update();
    return this.status;
  }

  get status(): RedisStatus {
    return this.#status ?? 'unavailable';
  }

  get usable(): boolean {
    return this.#status === 'ok';
  }

  /** Called with every later status change. */
  onStatus(listener: (status: RedisStatus) => void): void {
    this.#listeners.push(listener);
  }

  /** A command failed: on a live connection, Redis is taken as unavailable until a PING answers. */
  failed(e: unknown): void {
    if (e instanceof Error) this.#lastError = e.message;
    if (this.client.status !== 'ready' || this.#closed) return this.#update();
    this.#degraded = true;
    this.#update();
    this.#probe ??= setInterval(() => {
      if (this.client.status !== 'ready') return;
      this.client.ping().then(
        () => {
          this.#degraded = false;
          this.#update();
        },
        (err: Error) => void (this.#lastError = err.message),
      );
    }, PROBE_EVERY_MS);
    this.#probe.unref();
  }

  /** A second connection for SUBSCRIBE (a subscribed connection can run nothing else). */
  subscriber(): Redis {
    this.#subscriber ??= this.client.duplicate({ enableOfflineQueue: true, maxRetriesPerRequest: null, lazyConnect: false });
    this.#subscriber.on('error', () => {}); // the main connection reports trouble
    return this.#subscriber;
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#probe);
    this.#subscriber?.disconnect();
    await Promise.race([this.client.quit().catch(() => {}), new Promise((resolve) => setTimeout(resolve, 500).unref())]);
    this.client.disconnect();
  }

  #update(): void {
    if (this.#closed) return;
    const next: RedisStatus = this.client.status === 'ready' && !this.#degraded ? 'ok' : 'unavailable';
    if (next === this.#status) return;
    const first = this.#status === undefined;
    this.#status = next;
    if (next === 'ok') {
      clearInterval(this.#probe);
      this.#probe = undefined;
      this.logger.info(first ? 'redis connected: rate limits, sign-in counts and the cursor key are shared' : 'redis available again: shared state resumed');
    } else {
      this.logger.warn(
        { error: this.#lastError },
        'redis unavailable: this replica keeps rate limits and sign-in counts in its own memory until it is back',
      );
    }
    for (const listener of this.#listeners) listener(next);
  }
}
