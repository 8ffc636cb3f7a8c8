/**
 * Starts the OpenTelemetry SDK for one process. Only entry points call this; modules use the API.
 *
 * - Metrics are always collected for the Prometheus text served at `/metrics` (pull: nothing is
 *   sent anywhere), and also pushed by OTLP when `OTEL_METRICS_EXPORTER` names `otlp` or an OTLP
 *   endpoint variable is set.
 * - Traces are recorded and exported only when `OTEL_TRACES_EXPORTER` names an exporter or an OTLP
 *   endpoint variable is set; the SDK then builds the exporter from the standard `OTEL_*`
 *   variables. Otherwise no tracer is installed: spans are no-ops and nothing tries to connect.
 * - `OTEL_SDK_DISABLED=true` turns all of it off (`/metrics` then answers empty).
 */
import { diag, DiagLogLevel } from '@opentelemetry/api';
import { OTLPMetricExporter as OtlpJsonMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { OTLPMetricExporter as OtlpProtoMetricExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import { PrometheusExporter, PrometheusSerializer } from '@opentelemetry/exporter-prometheus';
import { hostname } from 'node:os';
import { NodeSDK, metrics, resources } from '@opentelemetry/sdk-node';
import type { Logger } from '../proto/runtime/log.js';

/** Prometheus text of this process's metrics. */
export type Scrape = () => Promise<string>;

export interface Telemetry {
  readonly scrape: Scrape;
  /** Flushes what is buffered (spans, a last metrics export) and stops. */
  shutdown(): Promise<void>;
}

const list = (env: NodeJS.ProcessEnv, name: string): string[] =>
  (env[name] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');

const set = (env: NodeJS.ProcessEnv, name: string): boolean => (env[name] ?? '').trim() !== '';

/** Whether the OTEL_* variables ask for trace export. */
export function tracesConfigured(env: NodeJS.ProcessEnv): boolean {
  const exporters = list(env, 'OTEL_TRACES_EXPORTER');
  if (exporters.length > 0) return !exporters.includes('none');
  return set(env, 'OTEL_EXPORTER_OTLP_ENDPOINT') || set(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT');
}

/** Whether the OTEL_* variables ask for OTLP metric export (Prometheus is always served). */
export function otlpMetricsConfigured(env: NodeJS.ProcessEnv): boolean {
  const exporters = list(env, 'OTEL_METRICS_EXPORTER');
  if (exporters.length > 0) return exporters.includes('otlp');
  return set(env, 'OTEL_EXPORTER_OTLP_ENDPOINT') || set(env, 'OTEL_EXPORTER_OTLP_METRICS_ENDPOINT');
}

function otlpMetricReader(env: NodeJS.ProcessEnv, log: Logger): metrics.MetricReader | undefined {
  const protocol = (env['OTEL_EXPORTER_OTLP_METRICS_PROTOCOL'] ?? env['OTEL_EXPORTER_OTLP_PROTOCOL'] ?? '')
    .trim()
    .toLowerCase();
  let exporter;
  if (protocol === 'http/json') exporter = new OtlpJsonMetricExporter();
  else if (protocol === '' || protocol === 'http/protobuf') exporter = new OtlpProtoMetricExporter();
  else {
    log.warn('OTLP metrics protocol not supported; metrics are still served at /metrics', { protocol });
    return undefined;
  }
  const interval = Number(env['OTEL_METRIC_EXPORT_INTERVAL'] ?? '60000');
  return new metrics.PeriodicExportingMetricReader({
    exporter,
    exportIntervalMillis: Number.isFinite(interval) && interval > 0 ? interval : 60000,
  });
}

/** Routes the SDK's own warnings (a failing exporter) into our JSON logs, unless OTEL_LOG_LEVEL says otherwise. */
function bridgeDiagnostics(env: NodeJS.ProcessEnv, log: Logger): void {
  if (set(env, 'OTEL_LOG_LEVEL')) return;
  const l = log.child({ component: 'otel' });
  const warn = (msg: string): void => {
    l.warn(msg);
  };
  const ignore = (): void => undefined;
  diag.setLogger({ error: warn, warn, info: ignore, debug: ignore, verbose: ignore }, DiagLogLevel.WARN);
}

/** Starts the SDK; call before any module is constructed (instruments bind at creation). */
export function startTelemetry(serviceName: string, env: NodeJS.ProcessEnv, log: Logger): Telemetry {
  bridgeDiagnostics(env, log);
  const prometheus = new PrometheusExporter({ preventServerStart: true });
  const readers: metrics.MetricReader[] = [prometheus];
  if (otlpMetricsConfigured(env)) {
    const r = otlpMetricReader(env, log);
    if (r !== undefined) readers.push(r);
  }
  const traces = tracesConfigured(env);
  const sdk = new NodeSDK({
    ...(set(env, 'OTEL_SERVICE_NAME') ? {} : { serviceName }),
    // The stock host detector reads the machine id asynchronously; until that settles, every
    // /metrics scrape logged an SDK error. The same facts, read synchronously: process, OS and
    // OTEL_RESOURCE_ATTRIBUTES from the detectors that have no async part, the host name directly.
    resourceDetectors: [resources.envDetector, resources.processDetector, resources.osDetector],
    resource: resources.resourceFromAttributes({ 'host.name': hostname(), 'host.arch': process.arch }),
    metricReaders: readers,
    // Without this the SDK would install its default OTLP log exporter; our logs are JSON lines.
    logRecordProcessors: [],
    // Undefined lets the SDK build span exporters from OTEL_*; none means no tracer at all.
    ...(traces ? {} : { spanProcessors: [] }),
  });
  sdk.start();
  const serializer = new PrometheusSerializer();
  return {
    scrape: async () => {
      try {
        const { resourceMetrics } = await prometheus.collect();
        return serializer.serialize(resourceMetrics);
      } catch {
        // Not bound to a meter provider: the SDK is disabled (OTEL_SDK_DISABLED).
        return '';
      }
    },
    shutdown: () => sdk.shutdown(),
  };
}
