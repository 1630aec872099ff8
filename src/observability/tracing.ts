// OpenTelemetry traces, on only when OTEL_EXPORTER_OTLP_ENDPOINT is set: a span per GraphQL
// operation and per upstream call (see plugin.ts and upstreams/http.ts), exported over
// OTLP/HTTP. Span attributes carry names, statuses and request ids only, never a secret.
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { setSpansEnabled } from './spans.ts';

export interface Tracing {
  forceFlush(): Promise<void>;
  shutdown(): Promise<void>;
}

export function startTracing(options: { endpoint: string; serviceName: string }): Tracing {
  const exporter = new OTLPTraceExporter({ url: `${options.endpoint.replace(/\/+$/, '')}/v1/traces` });
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': options.serviceName }),
    spanProcessors: [new BatchSpanProcessor(exporter)],
  });
  provider.register();
  setSpansEnabled(true);
  return {
    forceFlush: () => provider.forceFlush(),
    shutdown: () => {
      setSpansEnabled(false);
      return provider.shutdown();
    },
  };
}
