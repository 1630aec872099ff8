// IDaaS PAM, EIAM Developer API 2022-02-25: route handlers. (Being written.)
import { type Dialect, type EmulatorState, type Route } from './core.ts';

/** The Developer API's snake_case error dialect. */
export const idaasDialect: Dialect = {
  requestIdHeader: 'x-acs-request-id',
  error: (err, requestId) => ({ error: err.code, error_description: err.message, request_id: requestId, ...err.extra }),
};

export function idaasRoutes(_state: EmulatorState): Route[] {
  return [];
}
