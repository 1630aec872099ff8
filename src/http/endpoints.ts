// Operational endpoints beside /graphql: /health (liveness, served by yoga), /ready
// (readiness: 503 while draining) and /metrics (Prometheus).
import type { Plugin } from 'graphql-yoga';
import type { GatewayMetrics } from '../observability/metrics.ts';
import type { UpstreamHttp } from '../upstreams/http.ts';

export interface Lifecycle {
  draining: boolean;
}

export function useOperationalEndpoints(lifecycle: Lifecycle, http: UpstreamHttp, metrics: GatewayMetrics | undefined): Plugin {
  return {
    // Not async: on every other request (all of /graphql) it returns at once, without a promise.
    onRequest({ request, url, endResponse }) {
      if (request.method !== 'GET' && request.method !== 'HEAD') return;
      if (url.pathname === '/ready') {
        const body = { status: lifecycle.draining ? 'draining' : 'ready', upstreamCircuits: http.circuits() };
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
