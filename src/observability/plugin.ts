// Per-operation telemetry: one log line per operation (with the request id, never the
// document or variables), Prometheus counters and durations, and an OpenTelemetry span
// around execution so upstream-call spans nest under it.
import type { Plugin } from 'graphql-yoga';
import { getOperationAST, type ExecutionResult, type GraphQLError } from 'graphql';
import { SpanKind, SpanStatusCode, context as otelContext, trace } from '@opentelemetry/api';
import type { Context } from '../context.ts';
import type { GatewayMetrics } from './metrics.ts';
import { spansEnabled, tracer } from './spans.ts';

export function useOperationTelemetry(metrics: GatewayMetrics): Plugin<Context> {
  return {
    onExecute({ args, executeFn, setExecuteFn }) {
      const ctx = args.contextValue as Context;
      const op = getOperationAST(args.document, args.operationName ?? undefined);
      const type = op?.operation ?? 'unknown';
      const name = metrics.operationLabel(op?.name?.value ?? args.operationName);
      const started = performance.now();
      const span = spansEnabled()
        ? tracer.startSpan(`graphql ${type} ${name}`, {
            kind: SpanKind.SERVER,
            attributes: { 'graphql.operation.type': type, 'graphql.operation.name': name, 'gateway.request_id': ctx.requestId },
          })
        : undefined;
      if (span) setExecuteFn((execArgs) => otelContext.with(trace.setSpan(otelContext.active(), span), () => executeFn(execArgs)));
      return {
        onExecuteDone({ result }) {
          const r = result as ExecutionResult;
          const codes = (r.errors ?? []).map((e: GraphQLError) => String(e.extensions?.code ?? 'INTERNAL_SERVER_ERROR'));
          const outcome = codes.length === 0 ? 'ok' : r.data && Object.values(r.data).some((v) => v !== null) ? 'partial' : 'error';
          const seconds = (performance.now() - started) / 1000;
          metrics.operations.inc({ operation: name, type, outcome });
          metrics.operationDuration.observe({ operation: name, type }, seconds);
          for (const code of codes) metrics.errors.inc({ code });
          if (span) {
            span.setAttribute('graphql.outcome', outcome);
            if (codes.length) span.setStatus({ code: SpanStatusCode.ERROR, message: [...new Set(codes)].join(',') });
            span.end();
          }
          ctx.services.operationLogger.info(
            {
              requestId: ctx.requestId,
              operation: name,
              type,
              outcome,
              ms: Math.round(seconds * 1000),
              errors: codes.length ? codes : undefined,
              upstreamCalls: ctx.upstreamCalls.length ? ctx.upstreamCalls : undefined,
            },
            'graphql operation',
          );
        },
      };
    },
  };
}
