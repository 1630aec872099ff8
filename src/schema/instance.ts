// An IDaaS instance: the entry point to its authentication tokens.
import { builder } from './builder.ts';
import { idRule, instanceIdRule } from './inputs.ts';
import { AuthenticationTokenConnection } from './authentication-token.ts';
import { DEFAULT_FIRST, MAX_FIRST, loadTokenConnection } from './pagination.ts';
import { badInput } from '../errors.ts';

interface InstanceShape {
  instanceId: string;
}

export const InstanceRef = builder.objectRef<InstanceShape>('Instance');

builder.node(InstanceRef, {
  description: 'An Alibaba Cloud IDaaS instance (its PAM application).',
  id: {
    resolve: (i) => i.instanceId,
    parse: (id) => {
      const r = instanceIdRule.safeParse(id);
      if (!r.success) throw badInput('Not an Instance id.');
      return r.data;
    },
  },
  // IDaaS has no read for an instance itself: refetching is a pure decode.
  loadOne: (instanceId) => ({ instanceId }),
  fields: (t) => ({
    instanceId: t.exposeString('instanceId'),
    authenticationTokens: t.field({
      type: AuthenticationTokenConnection,
      nullable: true,
      description: `The consumer's authentication tokens as a Relay connection over IDaaS PAM's nextToken paging. \`first\` (default ${DEFAULT_FIRST}, at most ${MAX_FIRST}) may span several upstream pages.`,
      args: {
        consumerId: t.arg.string({ required: true, validate: idRule() }),
        credentialProviderIdentifier: t.arg.string({ required: true, validate: idRule() }),
        revoked: t.arg.boolean({ description: 'Only revoked (true) or only unrevoked (false) tokens.' }),
        expired: t.arg.boolean({ description: 'Only expired (true) or only unexpired (false) tokens.' }),
        first: t.arg.int({ defaultValue: DEFAULT_FIRST, description: `How many edges, 0 to ${MAX_FIRST}.` }),
        after: t.arg.string({ description: 'An `endCursor` or edge `cursor` from an earlier page of the same query.' }),
      },
      resolve: (instance, args, ctx) =>
        loadTokenConnection(
          ctx,
          {
            instanceId: instance.instanceId,
            consumerId: args.consumerId,
            credentialProviderIdentifier: args.credentialProviderIdentifier,
            revoked: args.revoked,
            expired: args.expired,
          },
          args,
        ) as never,
    }),
  }),
});

builder.queryField('instance', (t) =>
  t.field({
    type: InstanceRef,
    description: 'An IDaaS instance by id. Makes no upstream call by itself.',
    args: { instanceId: t.arg.string({ required: true, validate: instanceIdRule }) },
    resolve: (_root, { instanceId }) => ({ instanceId }),
  }),
);
