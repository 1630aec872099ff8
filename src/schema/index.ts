// Imports every domain file (each registers its types and fields), then builds the schema.
import { lexicographicSortSchema, printSchema } from 'graphql';
import { builder } from './builder.ts';
import './credential.ts';
import './instance.ts';
import './authentication-token.ts';
import './cloud-account-role.ts';
import './iam-token.ts';
import './viewer.ts';
import './lease.ts';

export const schema = builder.toSchema();

/** The SDL committed as schema.graphql. */
export const printedSchema = () => `${printSchema(lexicographicSortSchema(schema))}\n`;
