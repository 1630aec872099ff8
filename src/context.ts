// The per-request context: upstream clients bound to the caller, per-request loaders, and
// the gateway-wide services they share. Nothing in it outlives the request.
import DataLoader from 'dataloader';
import type { Logger } from 'pino';
import type { YogaInitialContext } from 'graphql-yoga';
import type { GatewayConfig } from './config.ts';
import { GatewayError } from './errors.ts';
import type { UpstreamHttp } from './upstreams/http.ts';
import { IdaasClient, type ListAuthenticationTokensParams } from './upstreams/idaas/client.ts';
import type { AuthenticationTokenPage } from './upstreams/idaas/schemas.ts';
import { IamClient } from './upstreams/iam/client.ts';
import type { CursorCodec } from './schema/cursor.ts';

/** What createGateway builds once and every request shares. */
export interface GatewayServices {
  config: GatewayConfig;
  http: UpstreamHttp;
  cursors: CursorCodec;
  logger: Logger;
}

export interface Context {
  services: GatewayServices;
  logger: Logger;
  /** The IDaaS client for this caller; UNAUTHENTICATED (and no upstream call) without `Authorization`. */
  idaas(): IdaasClient;
  /** The IAM client; IAM operations carry their credentials in the input. */
  iam(): IamClient;
  /** Identical page requests within one operation are made once; different ones run concurrently. */
  authenticationTokenPages: DataLoader<ListAuthenticationTokensParams, AuthenticationTokenPage, string>;
}

export function createContext(services: GatewayServices, initial: YogaInitialContext, logger: Logger): Context {
  const authorization = initial.request.headers.get('authorization')?.trim() || undefined;
  let client: IdaasClient | undefined;
  const idaas = () => {
    if (!authorization) {
      throw new GatewayError('This operation needs the IDaaS access token: send `Authorization: Bearer <access token>`.', 'UNAUTHENTICATED');
    }
    client ??= new IdaasClient(services.http, services.config.idaas, authorization, logger);
    return client;
  };
  let iam: IamClient | undefined;
  return {
    services,
    logger,
    idaas,
    iam: () => (iam ??= new IamClient(services.http, services.config.iam.endpoints, logger)),
    authenticationTokenPages: new DataLoader(
      (keys) => Promise.all(keys.map((k) => idaas().listAuthenticationTokens(k).catch((e: Error) => e))),
      { cacheKeyFn: pageKey },
    ),
  };
}

function pageKey(p: ListAuthenticationTokensParams): string {
  return JSON.stringify([p.instanceId, p.consumerId, p.credentialProviderIdentifier, p.revoked ?? null, p.expired ?? null, p.nextToken ?? null, p.maxResults]);
}
