/**
 * The meter for this package's own metrics (spool, ledger failures, unaudited requests). `register`
 * builds a private meter provider from OTEL_METRICS_EXPORTER instead of replacing the
 * application's global one; without it (the instrumentation in the application's own SDK) the
 * global meter provider is used.
 */
import { createNoopMeter, metrics, type Histogram, type Meter, type MeterProvider } from '@opentelemetry/api';
import { INSTRUMENTATION_NAME } from '../semconv';
import { PACKAGE_VERSION } from '../version';

let provider: MeterProvider | undefined;

export function setAuditMeterProvider(meterProvider: MeterProvider | undefined): void {
  provider = meterProvider;
}

/** Ask for it when recording (not once at load): the provider is set after modules load. */
export function auditMeter(): Meter {
  return (provider ?? metrics.getMeterProvider()).getMeter(INSTRUMENTATION_NAME, PACKAGE_VERSION);
}

const NOOP_HISTOGRAM = createNoopMeter().createHistogram('otel-llm-audit.noop');

/**
 * False for the API's no-op histogram (what a meter gives when no meter provider is registered),
 * so that a call spends nothing on metric attributes nobody collects. Compared by class, not by
 * identity: an application may load a second copy of @opentelemetry/api (another 1.x nested under
 * a dependency), whose no-op is a different object of a class with the same name.
 */
export function recordsMetrics(histogram: Histogram): boolean {
  return histogram !== NOOP_HISTOGRAM && histogram?.constructor?.name !== NOOP_HISTOGRAM.constructor.name;
}
