// Several plugins' onRequest hooks run as one, and their onResponse hooks as one, because the
// server adapter calls each plugin's hook through its promise helpers, with a fresh payload
// object and several closures per hook. Same order and same rule as yoga: the hooks run one after
// the other, the first onRequest that answers (endResponse) ends them, and every onResponse runs.
// For hooks that only read the request and may answer, and onResponse hooks that only change the
// response's headers; none of them calls setRequest or setResponse.
import type { Plugin } from 'graphql-yoga';

type OnRequest = NonNullable<Plugin['onRequest']>;
type OnResponse = NonNullable<Plugin['onResponse']>;
type Payload = Parameters<OnRequest>[0];
type ResponsePayload = Parameters<OnResponse>[0];

export function withOneOnRequest(plugins: Plugin<any>[]): Plugin<any>[] {
  const hooks: OnRequest[] = [];
  const responseHooks: OnResponse[] = [];
  const rest = plugins.map(({ onRequest, onResponse, ...plugin }) => {
    if (onRequest) hooks.push(onRequest);
    if (onResponse) responseHooks.push(onResponse);
    return plugin;
  });
  const onRequest: OnRequest = (payload: Payload) => {
    let answered = false;
    const endResponse = payload.endResponse;
    payload.endResponse = (response) => {
      answered ||= Boolean(response);
      endResponse(response);
    };
    const run = (from: number): void | Promise<void> => {
      for (let i = from; i < hooks.length && !answered; i++) {
        const result = hooks[i]!(payload);
        if (result && typeof (result as Promise<void>).then === 'function') return (result as Promise<void>).then(() => run(i + 1));
      }
    };
    return run(0);
  };
  const onResponse: OnResponse = (payload: ResponsePayload) => {
    const run = (from: number): void | Promise<void> => {
      for (let i = from; i < responseHooks.length; i++) {
        const result = responseHooks[i]!(payload);
        if (result && typeof (result as Promise<void>).then === 'function') return (result as Promise<void>).then(() => run(i + 1));
      }
    };
    return run(0);
  };
  return [{ onRequest, ...(responseHooks.length ? { onResponse } : {}) }, ...rest];
}
