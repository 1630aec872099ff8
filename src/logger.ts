// Structured JSON logs (pino). Secret paths are redacted wherever they appear; the tests
// capture every line and look for the secrets they used.
import { pino, type DestinationStream, type Logger } from 'pino';

export const REDACT_PATHS = [
  'authorization',
  'headers.authorization',
  'req.headers.authorization',
  'req.headers.cookie',
  'headers["x-subject-token"]',
  'password',
  'passcode',
  'token',
  'value',
  'variables',
  'input',
  '*.password',
  '*.passcode',
  '*.authorization',
];

const BASE = { service: 'token-gateway' };

let lastMs = 0;
let lastTime = '';
/**
 * pino's isoTime, made once per millisecond: under load, lines written in the same millisecond
 * share the string instead of each making a Date and an ISO string.
 */
function isoTime(): string {
  const now = Date.now();
  if (now !== lastMs) {
    lastMs = now;
    lastTime = `,"time":"${new Date(now).toISOString()}"`;
  }
  return lastTime;
}

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: BASE,
      redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
      timestamp: isoTime,
    },
    // pino's default stdout destination writes asynchronously, each line a round trip through
    // libuv's thread pool. A synchronous write is one syscall, and what Node itself does for stdout on a
    // pipe or file; it also keeps the last lines before a crash.
    destination ?? pino.destination({ dest: 1, sync: true }),
  );
}

/**
 * The logger of the one line per GraphQL operation: same destination, level, base fields and
 * timestamp as `logger`, without redaction. That line has a fixed shape, made only of values the
 * gateway produces itself (request id, operation name and type, outcome, duration, error codes,
 * upstream statuses and request ids), never of a request's variables, headers or an upstream
 * body: there is nothing in it to redact, and pino's redaction with its wildcard paths was most of
 * the cost of writing it. The secrets tests read this line like every other.
 */
export function operationLogger(logger: Logger): Logger {
  return pino({ level: logger.level, base: BASE, timestamp: isoTime }, (logger as unknown as Record<symbol, DestinationStream>)[pino.symbols.streamSym]);
}
