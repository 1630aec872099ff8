// Several plugins' onRequest hooks run as one, because yoga calls each plugin's onRequest
// through its promise helpers, with a fresh payload object and four closures per hook. Same
// order and same rule as yoga: the hooks run one after the other, and the first that answers
// (endResponse) ends it.
// For hooks that only read the request and may answer; none of them calls setRequest.
import type { Plugin } from 'graphql-yoga';

type OnRequest = NonNullable<Plugin['onRequest']>;
type Payload = Parameters<OnRequest>[0];

export function withOneOnRequest(plugins: Plugin<any>[]): Plugin<any>[] {
  const hooks: OnRequest[] = [];
  const rest = plugins.map(({ onRequest, ...plugin }) => {
    if (onRequest) hooks.push(onRequest);
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
  return [{ onRequest }, ...rest];
}
