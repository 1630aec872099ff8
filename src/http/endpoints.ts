// Operational endpoints beside /graphql: /health (liveness, served by yoga), /ready
// (readiness: 503 while draining) and /metrics (Prometheus).
// /ready also says whether Redis (REDIS_URL) is in use: "ok", "unavailable" (the replica serves
// from its own memory: still ready, so still 200), or "off" (no REDIS_URL).
import type { Plugin } from 'graphql-yoga';
import type { GatewayMetrics } from '../observability/metrics.ts';
import type { UpstreamHttp } from '../upstreams/http.ts';

export interface Lifecycle {
  draining: boolean;
}

export type RedisReadiness = 'ok' | 'unavailable' | 'off';

export function useOperationalEndpoints(
  lifecycle: Lifecycle,
  http: UpstreamHttp,
  metrics: GatewayMetrics | undefined,
  redis: () => RedisReadiness = () => 'off',
): Plugin {
  return {
    // Not async: on every other request (all of /graphql) it returns at once, without a promise.
    onRequest({ request, url, endResponse }) {
      if (request.method !== 'GET' && request.method !== 'HEAD') return;
      if (url.pathname === '/ready') {
        const body = { status: lifecycle.draining ? 'draining' : 'ready', upstreamCircuits: http.circuits(), redis: redis() };
        endResponse(
          new Response(JSON.stringify(body), {
            status: lifecycle.draining ? 503 : 200,
            headers: { 'content-type': 'application/json', 'cache-control': 'no-store' },
          }),
        );
      } else if (url.pathname === '/metrics' && metrics) {
        return metrics.registry.metrics().then((text) =>
          endResponse(new Response(text, { headers: { 'content-type': metrics.registry.contentType, 'cache-control': 'no-store' } })),
        );
      }
    },
  };
}
