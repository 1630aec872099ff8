// Query and body parameters, read the way the Developer API reads them; every refusal is a
// 400 invalid_request.
import { EmuError, type EmuRequest } from '../core.ts';

export const invalidRequest = (message: string) => new EmuError(400, 'invalid_request', message);

/** Optional parameters sent empty (`?revoked=`) count as absent, as the SDKs send them. */
export function optionalParam(req: EmuRequest, name: string): string | undefined {
  const v = req.query.get(name);
  return v === null || v === '' ? undefined : v;
}

export function requiredParam(req: EmuRequest, name: string): string {
  const v = optionalParam(req, name);
  if (v === undefined) throw invalidRequest(`The required parameter ${name} is missing.`);
  return v;
}

export function booleanParam(req: EmuRequest, name: string): boolean | undefined {
  const v = optionalParam(req, name);
  if (v === undefined || v === 'true' || v === 'false') return v === undefined ? undefined : v === 'true';
  throw invalidRequest(`The parameter ${name} must be true or false.`);
}

export function integerParam(req: EmuRequest, name: string, min: number, max: number): number | undefined {
  const v = optionalParam(req, name);
  if (v === undefined) return undefined;
  const n = /^\d{1,9}$/.test(v) ? Number(v) : NaN;
  if (!(n >= min && n <= max)) throw invalidRequest(`The parameter ${name} must be an integer from ${min} to ${max}.`);
  return n;
}

/** The JSON body as an object; the Developer API rejects anything else. */
export function jsonObject(req: EmuRequest): Record<string, unknown> {
  const body = req.json();
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw invalidRequest('The request body must be a JSON object.');
  }
  return body as Record<string, unknown>;
}

export function bodyString(body: Record<string, unknown>, name: string): string {
  const v = body[name];
  if (typeof v !== 'string' || v === '') {
    throw invalidRequest(`The required body field ${name} is missing or not a string.`);
  }
  return v;
}
