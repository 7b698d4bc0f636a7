// otel-llm-audit/next in the Edge runtime (the `edge-light` export condition): Next compiles
// instrumentation.ts for Edge too, where there are no Node modules to patch and no ledger to
// write. register() does nothing there, and the Node-only module is never compiled for Edge.
export function register() {}
export const LLM_SDK_PACKAGES = ['openai', '@anthropic-ai/sdk', '@aws-sdk/client-bedrock-runtime'];
export function bundledLlmSdks() {
  return [];
}
