// SchemaBuilder and its plugins only; defines no types.
import SchemaBuilder from '@pothos/core';
import RelayPlugin from '@pothos/plugin-relay';
import DataloaderPlugin from '@pothos/plugin-dataloader';
import ValidationPlugin from '@pothos/plugin-validation';
import { GraphQLScalarType } from 'graphql';
import { DateTimeResolver, JSONResolver } from 'graphql-scalars';
import type { Context } from '../context.ts';
import { badInput } from '../errors.ts';

export const builder = new SchemaBuilder<{
  Context: Context;
  DefaultFieldNullability: false;
  DefaultEdgesNullability: false;
  DefaultNodeNullability: false;
  Scalars: {
    DateTime: { Input: Date; Output: Date };
    JSON: { Input: unknown; Output: unknown };
    ID: { Input: string; Output: string };
  };
}>({
  plugins: [RelayPlugin, DataloaderPlugin, ValidationPlugin],
  defaultFieldNullability: false,
  relay: {
    clientMutationId: 'omit',
    cursorType: 'String',
    nodesOnConnection: true,
    nodesQueryOptions: false,
    edgesFieldOptions: { nullable: false },
    nodeFieldOptions: { nullable: false },
  },
  validation: {
    validationError: (result) =>
      badInput(`Invalid input: ${result.issues.map((i) => `${pathOf(i.path)}${i.message}`).join('; ')}`, {
        issues: result.issues.map((i) => ({ path: pathOf(i.path).replace(/: $/, ''), message: i.message })),
      }),
  },
});

function pathOf(path: readonly (PropertyKey | { key: PropertyKey })[] | undefined): string {
  if (!path?.length) return '';
  return `${path.map((p) => String(typeof p === 'object' ? p.key : p)).join('.')}: `;
}

/**
 * graphql-scalars' DateTime, serializing to the ISO string itself: its serialize hands the Date
 * to the response, where JSON.stringify calls toJSON() off V8's fast path. Same string, same
 * check of the value.
 */
const DateTime = new GraphQLScalarType<Date, string>({
  ...DateTimeResolver.toConfig(),
  serialize: (value) => (DateTimeResolver.serialize(value) as Date).toISOString(),
});

builder.addScalarType('DateTime', DateTime as GraphQLScalarType, {
  description: 'An ISO-8601 instant in UTC. Every upstream time (epoch milliseconds, epoch seconds, ISO strings) is normalised to it.',
});
builder.addScalarType('JSON', JSONResolver, {});

builder.queryType({});
builder.mutationType({});
