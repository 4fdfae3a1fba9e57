# cluster-sync image for compose.yaml: the built command line on Node.js 20.
# `docker run --rm IMAGE demo` runs the two-node demo inside the image (it
# starts its own redis-server and nats-server, installed below, and reads
# examples/); with CS_REDIS_URL and CS_NATS_URL set it uses those instead.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY src ./src
COPY workers ./workers
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
RUN apt-get update \
  && apt-get install -y --no-install-recommends redis-server nats-server \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY bin ./bin
COPY examples ./examples
USER node
ENTRYPOINT ["node", "dist/src/cli/main.js"]
