// Subscription.cloudAccountRoleCredentialLease: a role credential now, and a fresh one before each
// runs out, for as long as the client listens (src/leases/lease.ts). Served over GraphQL over SSE
// (yoga) and WebSocket (graphql-transport-ws, src/leases/websocket.ts).
import { builder } from './builder.ts';
import {
  AccessCredentialRef,
  CloudAccountRoleRef,
  ObtainInput,
  obtainRoleCredential,
  type ObtainRoleCredentialInput,
  type RoleShape,
} from './cloud-account-role.ts';
import type { Context } from '../context.ts';
import { Lease, type LeaseEvent } from '../leases/lease.ts';

const LeaseEventRef = builder.objectRef<LeaseEvent<RoleShape>>('CloudAccountRoleCredentialLeaseEvent').implement({
  description: 'One credential of a lease: the first is obtained at once, each next one before the previous expires.',
  fields: (t) => ({
    sequence: t.exposeInt('sequence', { description: 'Delivered events of this lease, from 1.' }),
    cloudAccountRole: t.field({ type: CloudAccountRoleRef, resolve: (e) => e.cloudAccountRole }),
    accessCredential: t.field({
      type: AccessCredentialRef,
      description: '`expiresAt` is when it really expires: the earlier of the upstream\'s credential expiry and the STS token\'s `expiration`.',
      resolve: (e) => e.accessCredential,
    }),
    renewsAt: t.expose('renewsAt', {
      type: 'DateTime',
      description: 'When the gateway plans to obtain the next credential (about two thirds into the lifetime of this one).',
    }),
  }),
});

builder.subscriptionType({});

builder.subscriptionField('cloudAccountRoleCredentialLease', (t) =>
  t.field({
    type: LeaseEventRef,
    description:
      'A lease on a cloud account role credential: the first event carries a credential obtained at once; the gateway then obtains a fresh one (same `durationSeconds`) at about two thirds of the remaining lifetime of the current one, and sends it, for as long as the client stays subscribed. Failures that may pass (5xx, 429, timeouts, an open circuit) are tried again with backoff while the current credential is valid; anything else, or the credential running out, ends the lease with one error event (the mutation\'s codes). Each renewal is a mint: authorized and audited in broker mode. At most MAX_LEASES_PER_CALLER open leases per caller (RATE_LIMITED beyond).',
    args: { input: t.arg({ type: ObtainInput, required: true }) },
    subscribe: (_root, { input }, ctx) => openLease(ctx, input),
    // A lease's final error arrives as an item of its stream: the event then carries it.
    resolve: (item) => {
      if (item instanceof Error) throw item;
      return item;
    },
  }),
);

/** A lease for the caller of `ctx`: each mint through the caller's access, with its own scope and request id. */
function openLease(ctx: Context, input: ObtainRoleCredentialInput): Lease<RoleShape> {
  const { services } = ctx;
  let mints = 0;
  return new Lease<RoleShape>({
    registry: services.leases,
    metrics: services.metrics,
    logger: ctx.logger,
    clientSignal: ctx.clientSignal,
    deadlineMs: services.config.requestDeadlineMs,
    // A caller is the hash of its Authorization value, or its subject in broker mode.
    callerKey: async () =>
      ctx.access.mode === 'broker' ? `sub:${(await ctx.access.caller())!.subject}` : `authorization:${ctx.authorizationHash() ?? ''}`,
    mint: (signal) => {
      // Each mint is its own request for the audit log and the upstream call's logs: `<request id>:<n>`.
      const requestId = `${ctx.requestId}:${++mints}`;
      const access = ctx.accessWithin({ logger: ctx.logger.child({ mint: mints }), signal }, requestId);
      return obtainRoleCredential(access, input);
    },
  });
}
