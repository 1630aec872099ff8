// The caller as the gateway sees it, so that a frontend can show who it is signed in as.
import { builder } from './builder.ts';
import type { Caller } from '../broker/caller.ts';

const AuthModeEnum = builder.enumType('AuthMode', {
  values: {
    FORWARD: { description: 'Callers send their own IDaaS access token; the gateway forwards it.' },
    BROKER: { description: 'Callers sign in with an OIDC JWT; the gateway is the IDaaS M2M application and decides with its policy.' },
  },
});

interface ViewerShape {
  mode: 'FORWARD' | 'BROKER';
  caller: Caller | undefined;
}

const ViewerRef = builder.objectRef<ViewerShape>('Viewer').implement({
  description: 'Who is calling, as the gateway sees it. Carries no secret.',
  fields: (t) => ({
    mode: t.field({ type: AuthModeEnum, resolve: (v) => v.mode }),
    subject: t.string({ nullable: true, description: 'The caller token’s `sub` (broker mode).', resolve: (v) => v.caller?.subject }),
    issuer: t.string({ nullable: true, description: 'The caller token’s `iss` (broker mode).', resolve: (v) => v.caller?.issuer }),
    groups: t.stringList({ description: 'The caller’s groups, from the configured claim (broker mode; empty in forward mode).', resolve: (v) => v.caller?.groups ?? [] }),
  }),
});

builder.queryField('viewer', (t) =>
  t.field({
    type: ViewerRef,
    nullable: true,
    description: 'The caller as the gateway sees it. In broker mode UNAUTHENTICATED without a valid caller token. Makes no upstream call (beyond fetching the issuer’s keys).',
    resolve: async (_root, _args, ctx) => ({
      mode: ctx.access.mode === 'broker' ? ('BROKER' as const) : ('FORWARD' as const),
      caller: await ctx.access.caller(),
    }),
  }),
);
