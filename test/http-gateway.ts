// A real HTTP gateway (node:http on 127.0.0.1, a free port) in front of the emulator, for
// tests that need a socket: the browser test and the typed example client.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { GatewayConfig } from '../src/config.ts';
import { startStack, type Stack } from './helpers.ts';

export interface HttpGateway {
  stack: Stack;
  server: Server;
  /** http://127.0.0.1:<port> */
  origin: string;
  /** http://127.0.0.1:<port>/graphql */
  url: string;
  close(): Promise<void>;
}

export async function startHttpGateway(overrides: (c: GatewayConfig) => Partial<GatewayConfig> = () => ({})): Promise<HttpGateway> {
  const stack = await startStack(overrides);
  const server = createServer(stack.gateway);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    stack,
    server,
    origin,
    url: `${origin}/graphql`,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await stack.close();
    },
  };
}
