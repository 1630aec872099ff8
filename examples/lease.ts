// A credential lease from a typed client: the subscription document is typed by gql.tada (like
// examples/client.ts), and graphql-sse's client streams it over GraphQL over SSE, the transport a
// browser would use. Each event is a fresh STS credential, sent before the previous one expires.
//
//   EMULATOR_STS_TTL_SECONDS=30 npm start   # in another terminal: credentials live 30 s, renewed every ~20 s
//   npm run example:lease                   # GATEWAY_URL=http://127.0.0.1:4000/graphql by default
//
// Settings (environment): GATEWAY_URL, IDAAS_ACCESS_TOKEN (or, in broker mode, the caller's JWT),
// IDAAS_INSTANCE_ID, ROLE_EXTERNAL_ID, DURATION_SECONDS (900-43200), EVENTS (stop after this many
// events; default: until Ctrl-C). Secrets are never printed in full.
import { print } from 'graphql';
import { createClient } from 'graphql-sse';
import { pathToFileURL } from 'node:url';
import { graphql, type ResultOf, type VariablesOf } from './graphql.ts';

export interface LeaseOptions {
  url: string;
  /** Sent as `Authorization: Bearer …`. */
  accessToken: string;
  instanceId: string;
  roleExternalId: string;
  durationSeconds: number;
  /** Stop after this many events (undefined: until interrupted). */
  events: number | undefined;
}

export function leaseOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): LeaseOptions {
  return {
    url: env.GATEWAY_URL || 'http://127.0.0.1:4000/graphql',
    // The defaults are the emulator's demo data (see `npm start`'s output): not secrets.
    accessToken: env.IDAAS_ACCESS_TOKEN || 'demo-idaas-access-token-full',
    instanceId: env.IDAAS_INSTANCE_ID || 'idaas_demo2jvisn35ea5lmthk267a',
    roleExternalId: env.ROLE_EXTERNAL_ID || 'acs:ram::1234567890123456:role/demo-readonly',
    durationSeconds: Number(env.DURATION_SECONDS || 900),
    events: env.EVENTS ? Number(env.EVENTS) : undefined,
  };
}

const Lease = graphql(`
  subscription Lease($input: ObtainCloudAccountRoleAccessCredentialInput!) {
    cloudAccountRoleCredentialLease(input: $input) {
      sequence
      renewsAt
      cloudAccountRole { name externalId vendorType }
      accessCredential {
        expiresAt
        alibabaCloudStsToken { accessKeyId accessKeySecret securityToken expiration }
        awsStsToken { accessKeyId secretAccessKey sessionToken expiration }
      }
    }
  }
`);

export type LeaseEvent = ResultOf<typeof Lease>['cloudAccountRoleCredentialLease'];

/** The lease ended with an error event: its contract code. */
export class LeaseEndedError extends Error {
  constructor(readonly code: string, message: string) {
    super(`${code}: ${message}`);
  }
}

const mask = (secret: string) => `${secret.slice(0, 8)}… (${secret.length} chars)`;

/** Subscribes, logs each credential as it arrives, and returns the events once `events` have come (or the lease ended). */
export async function lease(options: LeaseOptions = leaseOptionsFromEnv(), log: (line: string) => void = console.log): Promise<LeaseEvent[]> {
  const client = createClient({ url: options.url, headers: { authorization: `Bearer ${options.accessToken}` }, retryAttempts: 0 });
  const variables: VariablesOf<typeof Lease> = {
    input: { instanceId: options.instanceId, cloudAccountRoleExternalId: options.roleExternalId, durationSeconds: options.durationSeconds },
  };
  const received: LeaseEvent[] = [];
  const stream = client.iterate<ResultOf<typeof Lease>>({ query: print(Lease), variables });
  try {
    for await (const result of stream) {
      const error = result.errors?.[0];
      if (error || !result.data) {
        const code = String((error?.extensions as { code?: unknown } | undefined)?.code ?? 'ERROR');
        throw new LeaseEndedError(code, error?.message ?? 'no data');
      }
      const event = result.data.cloudAccountRoleCredentialLease;
      received.push(event);
      const { accessCredential: c } = event;
      const keyId = c.alibabaCloudStsToken?.accessKeyId ?? c.awsStsToken?.accessKeyId ?? '-';
      const secret = c.alibabaCloudStsToken?.accessKeySecret ?? c.awsStsToken?.secretAccessKey ?? '';
      log(
        `#${event.sequence} ${event.cloudAccountRole.name} (${event.cloudAccountRole.vendorType}): ` +
          `${keyId}, secret ${mask(secret)}, expires ${c.expiresAt}, next renewal ${event.renewsAt}`,
      );
      if (options.events !== undefined && received.length >= options.events) break;
    }
  } finally {
    // Leaving the loop ends the subscription: the gateway stops renewing at once.
    await stream.return?.();
    client.dispose();
  }
  return received;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  // Ctrl-C closes the connection: the gateway then stops renewing at once.
  lease().then(
    (events) => console.log(`lease ended after ${events.length} credential(s)`),
    (err: unknown) => {
      console.error(err instanceof LeaseEndedError ? `lease ended: ${err.message}` : err);
      process.exitCode = 1;
    },
  );
}
