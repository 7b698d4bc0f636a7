// ESM entry point of otel-llm-audit/next: the CommonJS build is the single implementation.
import cjs from '../cjs/next.js';

export const { register, bundledLlmSdks, LLM_SDK_PACKAGES } = cjs;
