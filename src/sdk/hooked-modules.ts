/**
 * The packages whose ESM imports the loader hook routes through the instrumentation (every other
 * module is left alone). The pattern catches them where Next.js imports an external package under
 * a hashed alias (`openai-<hash>`, a link that resolves to the package's own index.mjs).
 */
export const HOOKED_MODULES: Array<string | RegExp> = [
  'openai',
  '@anthropic-ai/sdk',
  '@google/genai',
  '@mistralai/mistralai',
  '@aws-sdk/client-bedrock-runtime',
  /\/node_modules\/(openai|@anthropic-ai\/sdk)\/index\.mjs$/,
  // The Messages class where Anthropic's Bedrock and Vertex SDKs reach it: they import the SDK's
  // internals (`@anthropic-ai/sdk/client`, its resources), never its entry point.
  /\/node_modules\/@anthropic-ai\/sdk\/resources\/messages\/messages\.mjs$/,
  // openai's Realtime clients, imported from their own files (`openai/realtime/ws`...).
  /\/node_modules\/openai\/(beta\/)?realtime\/(ws|websocket)\.mjs$/,
  /\/node_modules\/@google\/genai\/dist\/node\/index\.mjs$/,
  /\/node_modules\/@aws-sdk\/client-bedrock-runtime\/dist-es\/index\.js$/,
  'ai',
  /\/node_modules\/ai\/dist\/index\.m?js$/,
];
