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
RUN useradd --system --home /var/lib/llm-audit llm-audit && mkdir -p /var/lib/llm-audit && chown llm-audit /var/lib/llm-audit
USER llm-audit
EXPOSE 4319
ENTRYPOINT ["node", "dist/cjs/cli/main.js"]
CMD ["serve", "--host", "0.0.0.0", "--port", "4319"]
