/**
 * The packages whose ESM imports the loader hook routes through the instrumentation (every other
 * module is left alone). The pattern catches them where Next.js imports an external package under
 * a hashed alias (`openai-<hash>`, a link that resolves to the package's own index.mjs).
 */
export const HOOKED_MODULES: Array<string | RegExp> = ['openai', '@anthropic-ai/sdk', 'ai', /\/node_modules\/(openai|@anthropic-ai\/sdk)\/index\.mjs$/, /\/node_modules\/ai\/dist\/index\.m?js$/];
