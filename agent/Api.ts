/**
 * The agent's HTTP API (`API_PORT`): the PRD's `GET /metrics/containers`, `/health` and Prometheus
 * `/metrics`. Everything is served from the Sampler's latest sample; no request reaches the source.
 */
import { createServer } from "node:http"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { Effect, Layer } from "effect"
import type { AgentReport } from "../src/domain/AgentReport.ts"
import { AgentConfig } from "./Config.ts"
import { makeAgentRegistry } from "./prometheus.ts"
import { Sampler } from "./Sampler.ts"

export const router = Effect.gen(function* () {
  const sampler = yield* Sampler
  const clock = yield* Effect.clock
  const registry = makeAgentRegistry(sampler, () => clock.unsafeCurrentTimeMillis())

  const containers = Effect.suspend(() => {
    const latest = sampler.latest()
    if (latest === undefined) {
      return HttpServerResponse.json(
        { error: "no_sample_yet", message: "the first sample of the containers is not complete yet" },
        { status: 503 },
      )
    }
    const now = clock.unsafeCurrentTimeMillis()
    // Typed by the balancer's own Schema; encoding it is the identity, so plain JSON skips a
    // validation pass over every row on every request.
    const report: AgentReport = {
      node: sampler.nodeName,
      timestamp: Math.floor(now / 1000),
      generated_at: now,
      containers: latest.containers,
      stale: latest.stale,
    }
    return HttpServerResponse.json(report)
  })

  const health = Effect.sync(() => {
    const latest = sampler.latest()
    const now = clock.unsafeCurrentTimeMillis()
    return {
      status: latest === undefined ? "starting" : latest.stale ? "stale" : "ok",
      node: sampler.nodeName,
      containers: latest?.containers.length ?? 0,
      sample_age_ms: latest === undefined ? null : now - latest.completedAt,
      last_error: latest?.lastError ?? null,
    }
  }).pipe(Effect.flatMap((body) => HttpServerResponse.json(body)))

  const prometheus = Effect.promise(() => registry.metrics()).pipe(
    Effect.map((text) => HttpServerResponse.text(text, { contentType: registry.contentType })),
  )

  return HttpRouter.empty.pipe(
    HttpRouter.get("/metrics/containers", containers),
    HttpRouter.get("/health", health),
    HttpRouter.get("/metrics", prometheus),
  )
})

/** Serves the API on `API_HOST:API_PORT`, or nothing when `API_ENABLED=false`. */
export const layer = Layer.unwrapEffect(
  Effect.gen(function* () {
    const config = yield* AgentConfig
    if (!config.apiEnabled) return Layer.empty
    const app = yield* router
    return HttpServer.serve(app).pipe(
      HttpServer.withLogAddress,
      Layer.provide(NodeHttpServer.layer(createServer, { port: config.apiPort, host: config.apiHost })),
    )
  }),
)
