/**
 * OpenTelemetry for every module, through `@opentelemetry/api` only. Like the log format, metric
 * and span names are part of a process's external contract (dashboards depend on them), which is
 * why this lives here, shared by agent and control plane. The process entry point decides whether
 * an SDK records anything; without one every call here is a cheap no-op. Instruments must be
 * created after the entry point started the SDK (the API has no late-binding meter), so modules
 * make them in constructors, never at module load.
 */
import {
  context,
  metrics,
  propagation,
  trace,
  type Attributes,
  type Context,
  type Meter,
  type Observable,
  type Span,
  type ObservableResult,
  type Tracer,
} from '@opentelemetry/api';

const SCOPE = 'meshreg';

/** The meter every meshreg instrument comes from. */
export function meter(): Meter {
  return metrics.getMeter(SCOPE);
}

/** The tracer every meshreg span comes from. */
export function tracer(): Tracer {
  return trace.getTracer(SCOPE);
}

/** The context of a W3C `traceparent` received over a link; the active context when there is none. */
export function contextFrom(traceparent: string | undefined): Context {
  if (traceparent === undefined) return context.active();
  return propagation.extract(context.active(), { traceparent });
}

/** The W3C `traceparent` of `ctx` (the active context by default); undefined when nothing is traced. */
export function traceparentOf(ctx: Context = context.active()): string | undefined {
  const carrier: Record<string, string> = {};
  propagation.inject(ctx, carrier);
  return carrier['traceparent'];
}

/** The W3C `traceparent` naming `span` as the parent; undefined when the span is not recorded. */
export function traceparentOfSpan(span: Span): string | undefined {
  return traceparentOf(trace.setSpan(context.active(), span));
}

/** One gauge (or, with `counter`, a monotonic total) read at collection time. */
export interface GaugeDef {
  readonly name: string;
  readonly description: string;
  /** A running total that only grows (exported as a Prometheus counter, `_total`). */
  readonly counter?: boolean;
  readonly read: (observe: (value: number, attrs?: Attributes) => void) => void;
}

/**
 * Registers gauges whose values are read when metrics are collected (a scrape or an export), so
 * they cost nothing between collections. Returns a function that unregisters them.
 */
export function observeGauges(defs: readonly GaugeDef[], base: Attributes = {}): () => void {
  const m = meter();
  const registered: { gauge: Observable; cb: (r: ObservableResult) => void }[] = [];
  for (const def of defs) {
    const opts = { description: def.description };
    const gauge =
      def.counter === true
        ? m.createObservableCounter(def.name, opts)
        : m.createObservableGauge(def.name, opts);
    const cb = (r: ObservableResult): void => {
      def.read((value, attrs) => {
        r.observe(value, { ...base, ...attrs });
      });
    };
    gauge.addCallback(cb);
    registered.push({ gauge, cb });
  }
  return () => {
    for (const { gauge, cb } of registered) gauge.removeCallback(cb);
  };
}
