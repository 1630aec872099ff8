// The gateway's spans, created only while tracing is on (startTracing in tracing.ts). With no
// tracer provider, @opentelemetry/api still allocates a non-recording span, its options and a
// context per call; on the hot path that is work for nothing, so it is skipped.
import { INVALID_SPAN_CONTEXT, trace, type Span, type SpanOptions } from '@opentelemetry/api';

export const tracer = trace.getTracer('token-gateway');
let enabled = false;
const NOT_RECORDING: Span = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);

export function setSpansEnabled(on: boolean): void {
  enabled = on;
}

export function spansEnabled(): boolean {
  return enabled;
}

/** `fn` inside an active span when tracing is on; with a shared no-op span otherwise. */
export function withSpan<T>(name: string, options: () => SpanOptions, fn: (span: Span) => Promise<T>): Promise<T> {
  return enabled ? tracer.startActiveSpan(name, options(), fn) : fn(NOT_RECORDING);
}
