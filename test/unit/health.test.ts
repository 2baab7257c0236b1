/** HealthProbe over HTTP and the ReplicaPool: down/up thresholds, timeouts, passive marks, panic mode. */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, TestClock } from "effect"
import { layer as staticDiscoveryLayer } from "../../layers/discovery/static.ts"
import { layer as httpHealthLayer } from "../../layers/health-probe/http.ts"
import { layer as noMetricsLayer } from "../../layers/metrics-source/none.ts"
import { HealthProbe } from "../../src/HealthProbe.ts"
import { ReplicaPool } from "../../src/ReplicaPool.ts"
import { configLayer, fakeHttp } from "./fakes.ts"

const A = "http://127.0.0.2:8080"
const B = "http://127.0.0.3:8080"

/** Health of two static replicas, probed every second with a 0.5 s timeout, rise 2 / fall 3. */
const setup = () => {
  const http = fakeHttp()
  http.routes.set(`${A}/health`, { status: 200 })
  http.routes.set(`${B}/health`, { status: 200 })
  const layer = httpHealthLayer.pipe(
    Layer.provideMerge(ReplicaPool.layer),
    Layer.provide(Layer.merge(staticDiscoveryLayer, noMetricsLayer)),
    Layer.provide(http.layer),
    Layer.provide(
      configLayer({
        REPLICAS: `${A},${B}`,
        HEALTH_CHECK_INTERVAL: "1",
        HEALTH_CHECK_TIMEOUT: "0.5",
        HEALTHY_THRESHOLD: "2",
        UNHEALTHY_THRESHOLD: "3",
      }),
    ),
  )
  return { http, layer }
}

const candidateIds = Effect.map(ReplicaPool, (pool) =>
  pool.candidates().endpoints.map((endpoint) => endpoint.id),
)

/** The endpoint of the replica at `host:port`. */
const endpointOf = (replicaId: string) =>
  Effect.map(ReplicaPool, (pool) => pool.endpoints().find((endpoint) => endpoint.id === replicaId)!)

describe("HealthProbe (HTTP)", () => {
  it.effect("takes a replica out after 3 failed probes and back after 2 good ones", () => {
    const { http, layer } = setup()
    return Effect.gen(function* () {
      const b = yield* endpointOf("127.0.0.3:8080")
      // Probes run at 0 s, then every second.
      http.routes.set(`${B}/health`, { status: 500 })
      yield* TestClock.adjust("1 second")
      expect(b.health.healthy).toBe(true)
      yield* TestClock.adjust("1 second")
      expect(b.health.healthy).toBe(false)
      expect(b.health.lastError).toContain("500")
      expect(b.health.changedAt).toBe(2000)
      expect(yield* candidateIds).toEqual(["127.0.0.2:8080"])

      http.routes.set(`${B}/health`, { status: 200 })
      yield* TestClock.adjust("1 second")
      expect(b.health.healthy).toBe(false)
      yield* TestClock.adjust("1 second")
      expect(b.health.healthy).toBe(true)
      expect(b.health.lastError).toBeUndefined()
      expect(yield* candidateIds).toEqual(["127.0.0.2:8080", "127.0.0.3:8080"])
    }).pipe(Effect.provide(layer))
  })

  it.effect("counts a probe that outlasts HEALTH_CHECK_TIMEOUT as failed", () => {
    const { http, layer } = setup()
    return Effect.gen(function* () {
      const a = yield* endpointOf("127.0.0.2:8080")
      http.routes.set(`${A}/health`, "hang")
      yield* TestClock.adjust("1 second")
      yield* TestClock.adjust("1500 millis")
      expect(a.health.consecutiveFailures).toBe(2)
      yield* TestClock.adjust("1500 millis")
      expect(a.health.healthy).toBe(false)
      expect(a.health.lastError).toContain("no answer within 500 ms")
    }).pipe(Effect.provide(layer))
  })

  it.effect("a refused connection counts as a failure", () => {
    const { http, layer } = setup()
    return Effect.gen(function* () {
      const a = yield* endpointOf("127.0.0.2:8080")
      http.routes.delete(`${A}/health`)
      yield* TestClock.adjust("2 seconds")
      expect(a.health.healthy).toBe(false)
    }).pipe(Effect.provide(layer))
  })

  it.effect("connection errors reported by the proxy take a replica out before the next probe", () => {
    const { layer } = setup()
    return Effect.gen(function* () {
      const health = yield* HealthProbe
      const a = yield* endpointOf("127.0.0.2:8080")
      for (let i = 0; i < 3; i++) health.reportFailure(a, "ECONNREFUSED")
      expect(a.health.healthy).toBe(false)
      expect(a.health.lastError).toBe("ECONNREFUSED")
      expect(yield* candidateIds).toEqual(["127.0.0.3:8080"])
    }).pipe(Effect.provide(layer))
  })
})

describe("ReplicaPool and health", () => {
  it.effect("routes to every known replica when none is healthy (panic mode)", () => {
    const { http, layer } = setup()
    return Effect.gen(function* () {
      const pool = yield* ReplicaPool
      expect(pool.candidates().panic).toBe(false)
      http.routes.clear()
      yield* TestClock.adjust("3 seconds")
      expect(pool.candidates()).toMatchObject({ panic: true })
      expect(pool.candidates().endpoints).toHaveLength(2)
    }).pipe(Effect.provide(layer))
  })
})
