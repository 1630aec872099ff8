// createGateway(config, deps?) → the yoga instance (a fetch handler; it does not listen).
import { createYoga, type YogaServerInstance } from 'graphql-yoga';
import type { Logger } from 'pino';
import { randomUUID } from 'node:crypto';
import type { GatewayConfig } from './config.ts';
import { createContext, type Context, type GatewayServices } from './context.ts';
import { CursorCodec } from './schema/cursor.ts';
import { schema } from './schema/index.ts';
import { UpstreamHttp } from './upstreams/http.ts';
import { createLogger } from './logger.ts';

export interface GatewayDeps {
  logger?: Logger;
}

export type Gateway = YogaServerInstance<Record<string, unknown>, Context> & {
  services: GatewayServices;
  /** Closes upstream connection pools. */
  close(): Promise<void>;
};

export function createGateway(config: GatewayConfig, deps: GatewayDeps = {}): Gateway {
  const logger = deps.logger ?? createLogger(config.logLevel);
  const services: GatewayServices = {
    config,
    http: new UpstreamHttp(config.upstream),
    cursors: new CursorCodec(config.cursorSecret),
    logger,
  };
  const yoga = createYoga<Record<string, unknown>, Context>({
    schema,
    graphqlEndpoint: '/graphql',
    landingPage: false,
    graphiql: config.graphiql ? { title: 'token-gateway' } : false,
    logging: {
      debug: (...a: unknown[]) => logger.debug({ yoga: a.map(String) }, 'yoga'),
      info: (...a: unknown[]) => logger.info({ yoga: a.map(String) }, 'yoga'),
      warn: (...a: unknown[]) => logger.warn({ yoga: a.map(String) }, 'yoga'),
      error: (...a: unknown[]) => logger.error({ err: a.find((x) => x instanceof Error) ?? String(a[0]) }, 'yoga error'),
    },
    maskedErrors: true,
    context: (initial) => {
      const requestId = initial.request.headers.get('x-request-id')?.slice(0, 128) || randomUUID();
      return createContext(services, initial, logger.child({ requestId }));
    },
  });
  return Object.assign(yoga, {
    services,
    close: () => services.http.close(),
  }) as Gateway;
}
