// The documented Next.js integration (docs/deployment.md): this one line.
export { register } from 'otel-llm-audit/next';
