# syntax=docker/dockerfile:1
# Build stage: bundle the TypeScript gateway into dist/ with esbuild (scripts/bundle.mjs).
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
COPY scripts/bundle.mjs ./scripts/
COPY src ./src
RUN npm run build

# Runtime stage: production dependencies and the bundled gateway only, as a non-root user.
FROM node:20-bookworm-slim
# Memory: under the benchmark's load the gateway peaks at about 195 MB RSS with Node's default
# heap limits (4 GB here). Setting NODE_OPTIONS="--max-old-space-size=512" (or any cap up to
# 1 GB) holds it near 135 MB, but V8 then collects far more often: about 30% more CPU per
# request and twice the p99 latency in the same benchmark (README, Performance). We ship the
# defaults; set the cap where memory is tighter than latency. `npm run bench` runs the gateway
# with this image's NODE_OPTIONS, if it sets any.
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=4000
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY schema.graphql ./
# The Cedar schema the broker mode validates POLICY_FILE against, and the demo policy.
COPY policies ./policies
USER node
EXPOSE 4000
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 4000) + '/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "dist/server.mjs"]
