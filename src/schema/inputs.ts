// zod rules for identifiers taken from input: they end up in upstream paths and queries.
import { z } from 'zod';
import { INSTANCE_ID_PATTERN } from '../config.ts';

export const instanceIdRule = z.string().regex(INSTANCE_ID_PATTERN, 'must be 1-64 letters, digits, `_` or `-`');

/** A printable identifier without control characters. */
export const idRule = (max = 256) =>
  z
    .string()
    .min(1, 'must not be empty')
    .max(max, `must be at most ${max} characters`)
    .regex(/^[^\p{Cc}]+$/u, 'must not contain control characters');
