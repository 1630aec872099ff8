// Process-wide failure handling for the server: a stray promise rejection is a bug to see in
// the logs, not a reason to drop every in-flight request; an uncaught exception leaves the
// process in an unknown state, so it is logged and the process exits non-zero.
import type { Logger } from 'pino';

export function installProcessHandlers(logger: Logger): void {
  process.on('unhandledRejection', (reason) => logger.error({ err: reason }, 'unhandled rejection'));
  process.on('uncaughtException', (err) => {
    logger.fatal({ err }, 'uncaught exception: exiting');
    process.exit(1);
  });
}
