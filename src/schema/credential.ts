// The Credential interface: anything the gateway hands out that expires.
import { builder } from './builder.ts';

export interface Expiring {
  expiresAt: Date;
}

export const CredentialRef = builder.interfaceRef<Expiring>('Credential').implement({
  description: 'Anything the gateway hands out that expires.',
  fields: (t) => ({
    // Exposed (no resolver): graphql-jit then reads the property inline instead of calling a function with a resolve info.
    expiresAt: t.expose('expiresAt', { type: 'DateTime', description: 'When it expires (UTC).' }),
    expiresIn: t.int({
      description: 'Whole seconds from now until it expires; 0 once expired.',
      resolve: (c) => Math.max(0, Math.floor((c.expiresAt.getTime() - Date.now()) / 1000)),
    }),
    expired: t.boolean({ description: 'Whether it has expired.', resolve: (c) => c.expiresAt.getTime() <= Date.now() }),
  }),
});
