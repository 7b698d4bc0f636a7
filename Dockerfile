# The otel-llm-audit image: the `llm-audit` CLI (ledger server, verify, query, reports) and the demo
# app. docker-compose.yml runs it as the ledger server and as the demo app.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
COPY test/sdk-versions ./test/sdk-versions
RUN npm ci --no-audit --no-fund
COPY . .
# The CLI and the package, plus the fake provider the demo app talks to (no network, no API key).
RUN npm run build && npx tsc -p tsconfig.demo.json

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /app /app
# /app stays root's (read-only code). What the services write lives under the user's home, the
# only directory it owns: the demo app's OTLP spool (LLM_AUDIT_SPOOL_DIR in docker-compose.yml;
# register refuses to start, exit 78, when its spool cannot be written). A fixed uid, so that
# volumes and test/e2e/compose-runtime.test.ts agree with the image.
RUN useradd --system --uid 10002 --user-group --home-dir /var/lib/llm-audit llm-audit \
  && mkdir -p /var/lib/llm-audit/spool && chown -R llm-audit:llm-audit /var/lib/llm-audit
USER llm-audit
EXPOSE 4319
ENTRYPOINT ["node", "dist/cjs/cli/main.js"]
CMD ["serve", "--host", "0.0.0.0", "--port", "4319"]
