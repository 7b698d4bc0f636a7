// Minimal Next.js config for the deployment matrix. The one setting the integration asks for:
// the LLM SDKs stay external, so Node loads them and the instrumentation can patch them
// (otel-llm-audit/next checks this at startup and says so loudly when it is missing).
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// This app lives inside the otel-llm-audit checkout, whose node_modules holds openai and to which
// node_modules/otel-llm-audit links: the checkout is the workspace root.
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');

export default {
  // Every LLM SDK the app can resolve (the checkout's devDependencies included): what
  // otel-llm-audit/next asks for.
  serverExternalPackages: process.env.DEPLOY_NO_EXTERNALS
    ? []
    : ['openai', '@anthropic-ai/sdk', '@aws-sdk/client-bedrock-runtime', '@google/genai', '@mistralai/mistralai', 'ai'],
  turbopack: { root },
  outputFileTracingRoot: root,
  distDir: process.env.NEXT_DIST_DIR || '.next',
};
