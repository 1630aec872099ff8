// The one way tests put a gateway on a real socket: node:http on 127.0.0.1, a free port, as
// `npm start` serves it. For the tests that need one (the smoke test, chunked bodies, client
// aborts, rate limits by address, the browser and the typed example client); the rest send
// through yoga.fetch (test/helpers.ts).
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { EmulatorOptions } from '../src/emulator/index.ts';
import type { Gateway } from '../src/gateway.ts';
import { startStack, type Stack } from './helpers.ts';
import { attachWebSocket } from '../src/leases/websocket.ts';

export interface Listening {
  /** http://127.0.0.1:<port>/graphql */
  url: string;
  /** http://127.0.0.1:<port> */
  origin: string;
  /** Stops listening and drops every open connection (keep-alive ones included). */
  close(): Promise<void>;
}

/**
 * The gateway behind node:http on a free loopback port, with GraphQL over WebSocket on the same
 * path (as `npm start` serves it). Closing it leaves the gateway open.
 */
export async function listen(gateway: Gateway): Promise<Listening> {
  const server = createServer(gateway);
  const websocket = attachWebSocket(server, gateway);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: `${origin}/graphql`,
    origin,
    close: async () => {
      await websocket.close(0);
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

export interface HttpGateway extends Listening {
  stack: Stack;
}

/** A stack (emulator + gateway, test/helpers.ts) listening on a socket; close() closes both. */
export async function startHttpGateway(
  overrides: Parameters<typeof startStack>[0] = () => ({}),
  emulatorOptions?: EmulatorOptions,
): Promise<HttpGateway> {
  const stack = await startStack(overrides, emulatorOptions);
  const http = await listen(stack.gateway).catch(async (e: unknown) => {
    await stack.close();
    throw e;
  });
  return {
    ...http,
    stack,
    close: async () => {
      await http.close();
      await stack.close();
    },
  };
}
