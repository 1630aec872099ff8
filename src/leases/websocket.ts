// GraphQL over WebSocket (graphql-ws, subprotocol `graphql-transport-ws`) on the gateway's own
// port and path, following graphql-ws's documented yoga integration: each subscription runs
// through yoga's envelop (parse, validation and its limits, context, error masking).
//
//   - The caller's token: `connection_init`'s payload `{ "authorization": "Bearer …" }`, else the
//     upgrade request's `Authorization` header. The operation's context is built from a Request
//     carrying it, exactly as over HTTP (src/context.ts), so upstream calls still go through
//     `ctx.access` only.
//   - The upgrade needs no CSRF header (a browser cannot send one), but one carrying an `Origin`
//     that is neither the gateway's own nor in CORS_ORIGINS is refused (403): a page elsewhere
//     cannot ride on a browser's ambient credentials.
//   - Subscriptions only: queries and mutations go over HTTP, where the rate limit, the body
//     limit and the request deadline apply.
//   - PERSISTED_OPERATIONS applies as over HTTP: known hashes run their manifest document; with
//     `only`, nothing else runs.
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { useServer } from 'graphql-ws/use/ws';
import { GraphQLError, getOperationAST, type DocumentNode, type ExecutionArgs } from 'graphql';
import { ERROR_CODES, withoutVariableValues } from '../errors.ts';
import type { Gateway } from '../gateway.ts';
import { loadManifest, sha256Hex, type TrustedDocuments } from '../http/persisted-operations.ts';
import { schema } from '../schema/index.ts';

/** `connection_init`'s payload. */
type ConnectionParams = Record<string, unknown> & { authorization?: unknown };

export interface WebSocketTransport {
  /** Stops accepting upgrades and closes every connection (1001), terminating those that linger past `waitMs`. */
  close(waitMs?: number): Promise<void>;
}

/** Far above any real bearer token; printable ASCII only (it becomes a header value). */
const AUTHORIZATION = /^[\x20-\x7e]{0,16384}$/;
const CONTRACT_CODES = new Set<string>(ERROR_CODES);

const badInput = (message: string, reason?: string) =>
  new GraphQLError(message, { extensions: { code: 'BAD_USER_INPUT', ...(reason ? { reason } : {}) } });

/** Whether a WebSocket upgrade's `Origin` may connect: none (not a browser), the gateway's own, or a CORS origin. */
export function originAllowed(origin: string | undefined, host: string | undefined, corsOrigins: readonly string[]): boolean {
  if (origin === undefined) return true;
  if (corsOrigins.includes('*') || corsOrigins.includes(origin)) return true;
  if (!host || !URL.canParse(origin)) return false;
  return new URL(origin).host === host.toLowerCase();
}

/** Serves graphql-transport-ws on `server`'s upgrades to the gateway's GraphQL path. */
export function attachWebSocket(server: Server, gateway: Gateway): WebSocketTransport {
  const { config, logger } = gateway.services;
  const path = gateway.graphqlEndpoint;
  const wss = new WebSocketServer({ noServer: true, maxPayload: config.limits.maxBodyBytes });
  const persisted = config.persistedOperations;
  const trusted: TrustedDocuments = persisted.mode !== 'off' && persisted.file ? loadManifest(persisted.file, schema) : new Map();
  /** Per connection: aborted when it closes (every subscription's `clientSignal`). */
  const closedSignals = new WeakMap<WebSocket, AbortSignal>();

  const closedSignal = (socket: WebSocket) => {
    let signal = closedSignals.get(socket);
    if (!signal) {
      const controller = new AbortController();
      socket.once('close', () => controller.abort(new DOMException('the WebSocket closed', 'AbortError')));
      closedSignals.set(socket, (signal = controller.signal));
    }
    return signal;
  };

  /** The document to run, or why not (PERSISTED_OPERATIONS as over HTTP). */
  const documentText = (query: string | undefined, extensions: Record<string, unknown> | null | undefined): string | DocumentNode | GraphQLError => {
    const hash = (extensions?.persistedQuery as { sha256Hash?: unknown } | undefined)?.sha256Hash;
    if (persisted.mode === 'off' || (typeof hash !== 'string' && persisted.mode === 'allow')) {
      return query ? query : badInput('Must provide a query string.');
    }
    if (typeof hash !== 'string') {
      return badInput('This gateway runs only trusted documents: send the SHA-256 hash of one in extensions.persistedQuery.sha256Hash instead of `query`.', 'PERSISTED_ONLY');
    }
    if (query && sha256Hex(query) !== hash.toLowerCase()) {
      return badInput('extensions.persistedQuery.sha256Hash is not the SHA-256 of `query`.', 'PERSISTED_QUERY_HASH_MISMATCH');
    }
    const known = trusted.get(hash.toLowerCase());
    if (known) return known;
    if (persisted.mode === 'only') return badInput('This gateway runs only trusted documents, and none has this hash.', 'PERSISTED_ONLY');
    return query ? query : badInput('PersistedQueryNotFound', 'PERSISTED_QUERY_NOT_FOUND');
  };

  /** Every error a client sees carries a contract code, as over HTTP (useContractErrorCodes). */
  const withContractCodes = (errors: readonly GraphQLError[]): GraphQLError[] =>
    errors.map((e) => {
      if (CONTRACT_CODES.has(String(e.extensions?.code))) return e;
      if (e.path) return new GraphQLError('Unexpected error.', { path: e.path, extensions: { code: 'INTERNAL_SERVER_ERROR' } });
      return new GraphQLError(withoutVariableValues(e.message), {
        positions: e.positions,
        extensions: { ...e.extensions, code: 'BAD_USER_INPUT', ...(e.extensions?.code ? { reason: e.extensions.code } : {}) },
      });
    });

  type Enveloped = ReturnType<Gateway['getEnveloped']>;

  const disposable = useServer<ConnectionParams>(
    {
      onConnect: ({ connectionParams }) => {
        const authorization = connectionParams?.authorization;
        // 4403 Forbidden: an authorization that cannot be a header value. (Empty: none.)
        return authorization === undefined || (typeof authorization === 'string' && AUTHORIZATION.test(authorization));
      },
      onSubscribe: async (ctx, _id, payload) => {
        const upgrade = ctx.extra.request;
        const headers = new Headers();
        const fromInit = ctx.connectionParams?.authorization;
        const authorization = typeof fromInit === 'string' && fromInit ? fromInit : upgrade.headers.authorization;
        if (authorization) headers.set('authorization', authorization);
        const request = new Request(new URL(path, 'http://gateway.invalid'), { headers, signal: closedSignal(ctx.extra.socket) });
        const enveloped: Enveloped = gateway.getEnveloped({ request, params: payload, req: upgrade, socket: ctx.extra.socket } as never);

        const text = documentText(payload.query, payload.extensions);
        if (text instanceof GraphQLError) return [text];
        let document: DocumentNode;
        try {
          document = typeof text === 'string' ? enveloped.parse(text) : text;
        } catch (e) {
          return withContractCodes([e instanceof GraphQLError ? e : badInput('The document does not parse.')]);
        }
        const operation = getOperationAST(document, payload.operationName);
        if (!operation) return [badInput('Name the operation to run (operationName): the document has none, or several, or not that one.')];
        if (operation.operation !== 'subscription') {
          return [badInput('Over WebSocket the gateway serves subscriptions only: send queries and mutations over HTTP (POST /graphql).')];
        }
        const errors = enveloped.validate(enveloped.schema, document);
        if (errors.length) return withContractCodes(errors);
        return {
          schema: enveloped.schema,
          operationName: payload.operationName,
          document,
          variableValues: payload.variables,
          contextValue: await enveloped.contextFactory(),
          rootValue: { execute: enveloped.execute, subscribe: enveloped.subscribe },
        } satisfies ExecutionArgs;
      },
      execute: (args) => (args.rootValue as Enveloped).execute(args),
      subscribe: (args) => (args.rootValue as Enveloped).subscribe(args),
      onNext: (_ctx, _id, _payload, _args, result) => {
        if (!result.errors?.some((e) => !CONTRACT_CODES.has(String(e.extensions?.code)))) return;
        return { ...result, errors: withContractCodes(result.errors).map((e) => e.toJSON()) };
      },
      onError: (_ctx, _id, _payload, errors) => withContractCodes(errors).map((e) => e.toJSON()),
    },
    wss,
  );

  const refuse = (socket: Duplex, status: number, text: string) => {
    socket.once('finish', () => socket.destroy());
    socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  };

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    const pathname = (req.url ?? '/').split('?')[0];
    if (pathname !== path) return refuse(socket, 404, 'Not Found');
    if (gateway.lifecycle.draining) return refuse(socket, 503, 'Service Unavailable');
    if (!originAllowed(req.headers.origin, req.headers.host, config.corsOrigins)) {
      logger.info({ origin: String(req.headers.origin).slice(0, 200) }, 'WebSocket upgrade refused: foreign Origin');
      return refuse(socket, 403, 'Forbidden');
    }
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  };
  server.on('upgrade', onUpgrade);

  return {
    async close(waitMs = 5_000) {
      server.off('upgrade', onUpgrade);
      // Let graphql-ws send what the leases' last events left it (`next`, `complete`) before the close frames.
      await new Promise((resolve) => setImmediate(resolve));
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        Promise.resolve(disposable.dispose()).catch(() => {}),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, waitMs);
          timer.unref?.();
        }),
      ]);
      clearTimeout(timer);
      for (const client of wss.clients) client.terminate();
    },
  };
}
