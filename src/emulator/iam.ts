// IAM, Keystone v3 style (Huawei Cloud / Orange Business Cloud): route handlers. (Being written.)
import { type Dialect, type EmulatorState, type Route } from './core.ts';

/** Keystone's error dialect. */
export const iamDialect: Dialect = {
  requestIdHeader: 'x-request-id',
  error: (err) => ({ error: { code: err.status, title: err.code, message: err.message, ...err.extra } }),
};

/** Users, lockouts and issued tokens. */
export class IamDirectory {
  constructor(readonly state: EmulatorState) {}
  reset(): void {}
}

export function iamRoutes(_dir: IamDirectory): Route[] {
  return [];
}
