/**
 * The meter for this package's own metrics (spool, ledger failures, unaudited requests). `register`
 * builds a private meter provider from OTEL_METRICS_EXPORTER instead of replacing the
 * application's global one; without it (the instrumentation in the application's own SDK) the
 * global meter provider is used.
 */
import { metrics, type Meter, type MeterProvider } from '@opentelemetry/api';
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
