// The gateway's own HTTP answers outside GraphQL execution (limits, rate limits), shaped as
// GraphQL responses so clients read them like any other error.
import type { ErrorCode } from '../errors.ts';

export function graphqlErrorResponse(
  status: number,
  message: string,
  code: ErrorCode,
  extensions: Record<string, unknown> = {},
  headers: Record<string, string> = {},
): Response {
  return new Response(JSON.stringify({ errors: [{ message, extensions: { code, ...extensions } }] }), {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...headers },
  });
}
