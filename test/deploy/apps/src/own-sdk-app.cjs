// An app with its own OpenTelemetry NodeSDK, service name and exporter. Its exporter must keep
// receiving the app's spans beside the audit. Prints what its exporter received (OWN line).
const { NodeSDK } = require('@opentelemetry/sdk-node');
const { trace } = require('@opentelemetry/api');

const received = [];
const exporter = {
  export(spans, done) {
    for (const s of spans) received.push({ name: s.name, service: s.resource.attributes['service.name'] });
    done({ code: 0 });
  },
  shutdown: async () => {},
};
const sdk = new NodeSDK({ serviceName: 'own-sdk-app', traceExporter: exporter });
sdk.start();

const OpenAI = require('openai');
const { threeCalls, printAnswers, fail } = require('./calls.cjs');

trace
  .getTracer('own-sdk-app')
  .startActiveSpan('app-work', (span) =>
    threeCalls(OpenAI).finally(() => span.end()),
  )
  .then(async (out) => {
    await sdk.shutdown();
    printAnswers(out);
    process.stdout.write(`OWN ${JSON.stringify(received)}\n`);
  }, fail);
