// Shared assertions for the emulator tests.
import { expect } from 'vitest';

export interface IdaasErrorBody {
  error: string;
  error_description: string;
  request_id: string;
}

/**
 * Asserts an error answer in IDaaS PAM's snake_case dialect: the status, the code, exactly
 * the dialect's three fields (so no stack or internals leak) and the request id echoed in
 * the `x-acs-request-id` header.
 */
export async function expectIdaasError(res: Response, status: number, code: string): Promise<IdaasErrorBody> {
  const text = await res.text();
  const body = JSON.parse(text) as IdaasErrorBody;
  expect({ status: res.status, error: body.error }).toEqual({ status, error: code });
  expect(Object.keys(body).sort()).toEqual(['error', 'error_description', 'request_id']);
  expect(body.error_description).toEqual(expect.any(String));
  expect(body.request_id).toMatch(/^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$/);
  expect(res.headers.get('x-acs-request-id')).toBe(body.request_id);
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  return body;
}
