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
# NODE_OPTIONS: V8's old generation capped at 512 MB, ten times the gateway's live heap under
# load. With Node's default cap (4 GB on a machine with 16 GB or more) V8 lets garbage pile up
# before collecting it: peak RSS about 200 MB under the benchmark's load, against about 140 MB
# with this cap (README, Performance). Raise it with the container's memory limit if you raise
# UPSTREAM_MAX_CONCURRENCY a lot. `npm run bench` runs the gateway with these same options.
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=4000 \
    NODE_OPTIONS="--max-old-space-size=512"
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY schema.graphql ./
USER node
EXPOSE 4000
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 4000) + '/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "dist/server.mjs"]
