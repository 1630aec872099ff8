// gql.tada, set up for token-gateway's schema: `graphql(...)` documents are typed from
// graphql-env.d.ts, which `npm run examples:types` generates from ../schema.graphql.
import { initGraphQLTada } from 'gql.tada';
import type { introspection } from './graphql-env.d.ts';

export const graphql = initGraphQLTada<{
  introspection: introspection;
  scalars: {
    /** ISO-8601 UTC instant, e.g. "2036-01-01T00:00:00.000Z". */
    DateTime: string;
    JSON: unknown;
  };
}>();

export type { FragmentOf, ResultOf, VariablesOf } from 'gql.tada';
export { readFragment } from 'gql.tada';
