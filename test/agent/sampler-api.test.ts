/** The agent's Sampler and API on a fake source and TestClock: first sample, staleness, recovery, the report's Schema. */
import { HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Layer, Schema, TestClock } from "effect"
import { router } from "../../agent/Api.ts"
import { AgentConfig } from "../../agent/Config.ts"
import { Sampler } from "../../agent/Sampler.ts"
import { SourceUnavailable, StatsSource } from "../../agent/StatsSource.ts"
import { AgentReport, type ContainerMetrics } from "../../src/domain/AgentReport.ts"

const row = (cpu: number): ContainerMetrics => ({
  container_id: "c1",
  container_name: "web-stress.1.abc",
  service_name: "web-stress",
  cpu_percent: cpu,
  memory_mb: 100,
  memory_percent: 10,
  network_rx_mbps: 1,
  network_tx_mbps: 2,
  networks: { "swarmguard-net": "10.0.1.2" },
  cpu_limit_cores: 2,
  cpu_percent_of_limit: cpu / 2,
  sampled_at: 0,
})

/** A source answering what the test says: rows, a failure, or a sample that takes time. */
const fakeSource = () => {
  const script = { cpu: 40, down: false }
  const layer = Layer.succeed(StatsSource, {
    nodeName: "worker-1",
    sample: Effect.suspend(() =>
      script.down
        ? Effect.fail(new SourceUnavailable({ reason: "Engine not reachable" }))
        : Effect.succeed([row(script.cpu)]),
    ).pipe(Effect.delay("200 millis")),
  })
  return { script, layer }
}

const setup = () => {
  const source = fakeSource()
  const layer = Sampler.layer.pipe(
    Layer.provide(source.layer),
    Layer.provideMerge(
      AgentConfig.layer.pipe(
        Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map([["POLL_INTERVAL", "1"]])))),
        Layer.orDie,
      ),
    ),
  )
  return { source, layer }
}

const get = (path: string) =>
  Effect.gen(function* () {
    const app = yield* router
    const response = yield* app.pipe(
      Effect.provideService(
        HttpServerRequest.HttpServerRequest,
        HttpServerRequest.fromWeb(new Request(`http://agent${path}`)),
      ),
      Effect.scoped,
    )
    const web = HttpServerResponse.toWeb(response)
    return { status: web.status, text: yield* Effect.promise(() => web.text()) }
  })

describe("agent API", () => {
  it.effect("answers 503 with a reason before the first sample, then the latest report", () => {
    const { layer } = setup()
    return Effect.gen(function* () {
      const before = yield* get("/metrics/containers")
      expect(before.status).toBe(503)
      expect(JSON.parse(before.text).error).toBe("no_sample_yet")

      yield* TestClock.adjust("200 millis")
      const after = yield* get("/metrics/containers")
      expect(after.status).toBe(200)
      const report = Schema.decodeUnknownSync(AgentReport)(JSON.parse(after.text))
      expect(report).toMatchObject({ node: "worker-1", stale: false, generated_at: 200 })
      expect(report.containers).toEqual([row(40)])
    }).pipe(Effect.provide(layer))
  })

  it.effect("serves the last sample marked stale while the source is down, and recovers by itself", () => {
    const { source, layer } = setup()
    return Effect.gen(function* () {
      yield* TestClock.adjust("1200 millis")
      source.script.down = true
      yield* TestClock.adjust("2 seconds")
      const stale = JSON.parse((yield* get("/metrics/containers")).text)
      expect(stale.stale).toBe(true)
      expect(stale.containers[0].cpu_percent).toBe(40)
      expect(JSON.parse((yield* get("/health")).text)).toMatchObject({
        status: "stale",
        last_error: "Engine not reachable",
      })

      source.script.down = false
      source.script.cpu = 75
      yield* TestClock.adjust("1 second")
      const fresh = JSON.parse((yield* get("/metrics/containers")).text)
      expect(fresh).toMatchObject({ stale: false, containers: [{ cpu_percent: 75 }] })
      expect(JSON.parse((yield* get("/health")).text).status).toBe("ok")
    }).pipe(Effect.provide(layer))
  })

  it.effect("exports the latest sample in Prometheus text", () => {
    const { layer } = setup()
    return Effect.gen(function* () {
      yield* TestClock.adjust("200 millis")
      const { status, text } = yield* get("/metrics")
      expect(status).toBe(200)
      expect(text).toContain(
        'swarmguard_container_cpu_percent{node="worker-1",container_id="c1",container_name="web-stress.1.abc",service_name="web-stress"} 40',
      )
      expect(text).toContain("swarmguard_agent_source_up 1")
    }).pipe(Effect.provide(layer))
  })
})
