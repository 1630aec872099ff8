// What a fault is, written once: the control route (POST /__emulator/faults) and
// `emulator.inject()` both check a fault against this schema, so neither can accept
// a fault the other would refuse.
import { z } from 'zod';

export const faultSchema = z
  .object({
    /** Route name, or `*` for every upstream route. */
    route: z.string().min(1),
    /** Delay before answering (or before the other fault applies). */
    latencyMs: z.number().int().min(0).max(600_000).optional(),
    /** Answer with this status in the route's dialect (or with `body` when given). */
    status: z.number().int().min(100).max(599).optional(),
    body: z.unknown().optional(),
    headers: z.record(z.string(), z.string()).optional(),
    /** Answer 200 with a truncated JSON body. */
    malformed: z.boolean().optional(),
    /** Destroy the connection without answering. */
    reset: z.boolean().optional(),
    /** Send the status, the headers and part of the body, then destroy the connection. */
    truncated: z.boolean().optional(),
    /** How many matching requests this fault applies to; unlimited when absent. */
    times: z.number().int().min(1).optional(),
  })
  .strict();

export type Fault = z.infer<typeof faultSchema>;

/** One line naming every problem, as the control route answers it. */
export function describeFaultError(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.join('.') || 'fault'}: ${i.message}`).join('; ');
}

/** `inject()`'s check: the control route's, thrown instead of answered with a 400. */
export function checkFault(input: unknown): Fault {
  const parsed = faultSchema.safeParse(input);
  if (!parsed.success) throw new TypeError(`Invalid fault: ${describeFaultError(parsed.error)}`);
  return parsed.data;
}
