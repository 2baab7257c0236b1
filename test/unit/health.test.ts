/** HealthProbe over HTTP and the ReplicaPool: down/up thresholds, timeouts, passive marks, panic mode. */
import { describe, expect, it } from "@effect/vitest"
import { Effect, FastCheck as fc, Layer, TestClock } from "effect"
import { layer as staticDiscoveryLayer } from "../../layers/discovery/static.ts"
import { layer as httpHealthLayer } from "../../layers/health-probe/http.ts"
import { layer as consecutiveOutliersLayer } from "../../layers/outlier-detector/consecutive.ts"
import { Discovery } from "../../src/Discovery.ts"
import { HealthProbe } from "../../src/HealthProbe.ts"
import { ReplicaPool } from "../../src/ReplicaPool.ts"
import { configLayer, fakeHttp, noOutliers, replica } from "./fakes.ts"

const A = "http://127.0.0.2:8080"
const B = "http://127.0.0.3:8080"

/** Health of two static replicas, probed every second with a 0.5 s timeout, rise 2 / fall 3. */
const setup = () => {
  const http = fakeHttp()
  http.routes.set(`${A}/health`, { status: 200 })
  http.routes.set(`${B}/health`, { status: 200 })
  const layer = ReplicaPool.layer.pipe(
    Layer.provideMerge(Layer.merge(httpHealthLayer, consecutiveOutliersLayer)),
    Layer.provideMerge(staticDiscoveryLayer),
    Layer.provide(http.layer),
    Layer.provideMerge(
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
  pool.candidates().replicas.map((replica) => replica.id),
)

describe("HealthProbe (HTTP)", () => {
  it.effect("takes a replica out after 3 failed probes and back after 2 good ones", () => {
    const { http, layer } = setup()
    return Effect.gen(function* () {
      const health = yield* HealthProbe
      // Probes run at 0 s, then every second.
      http.routes.set(`${B}/health`, { status: 500 })
      yield* TestClock.adjust("1 second")
      expect(health.isHealthy("127.0.0.3:8080")).toBe(true)
      yield* TestClock.adjust("1 second")
      expect(health.isHealthy("127.0.0.3:8080")).toBe(false)
      expect(health.state("127.0.0.3:8080")?.lastError).toContain("500")
      expect(yield* candidateIds).toEqual(["127.0.0.2:8080"])

      http.routes.set(`${B}/health`, { status: 200 })
      yield* TestClock.adjust("1 second")
      expect(health.isHealthy("127.0.0.3:8080")).toBe(false)
      yield* TestClock.adjust("1 second")
      expect(health.isHealthy("127.0.0.3:8080")).toBe(true)
      expect(yield* candidateIds).toEqual(["127.0.0.2:8080", "127.0.0.3:8080"])
    }).pipe(Effect.provide(layer))
  })

  it.effect("counts a probe that outlasts HEALTH_CHECK_TIMEOUT as failed", () => {
    const { http, layer } = setup()
    return Effect.gen(function* () {
      const health = yield* HealthProbe
      http.routes.set(`${A}/health`, "hang")
      yield* TestClock.adjust("1 second")
      yield* TestClock.adjust("1500 millis")
      expect(health.state("127.0.0.2:8080")?.consecutiveFailures).toBe(2)
      yield* TestClock.adjust("1500 millis")
      expect(health.isHealthy("127.0.0.2:8080")).toBe(false)
      expect(health.state("127.0.0.2:8080")?.lastError).toContain("no answer within 500 ms")
    }).pipe(Effect.provide(layer))
  })

  it.effect("a refused connection counts as a failure", () => {
    const { http, layer } = setup()
    return Effect.gen(function* () {
      const health = yield* HealthProbe
      http.routes.delete(`${A}/health`)
      yield* TestClock.adjust("2 seconds")
      expect(health.isHealthy("127.0.0.2:8080")).toBe(false)
    }).pipe(Effect.provide(layer))
  })

  it.effect("connection errors reported by the proxy take a replica out before the next probe", () => {
    const { layer } = setup()
    return Effect.gen(function* () {
      const health = yield* HealthProbe
      for (let i = 0; i < 3; i++) health.reportFailure("127.0.0.2:8080", "ECONNREFUSED")
      expect(health.isHealthy("127.0.0.2:8080")).toBe(false)
      expect(yield* candidateIds).toEqual(["127.0.0.3:8080"])
    }).pipe(Effect.provide(layer))
  })
})

describe("ReplicaPool", () => {
  it.effect("routes to every known replica when none is healthy (panic mode)", () => {
    const { http, layer } = setup()
    return Effect.gen(function* () {
      const pool = yield* ReplicaPool
      expect(pool.candidates().panic).toBe(false)
      http.routes.clear()
      yield* TestClock.adjust("3 seconds")
      expect(pool.candidates()).toMatchObject({ panic: true })
      expect(pool.candidates().replicas).toHaveLength(2)
    }).pipe(Effect.provide(layer))
  })

  it.effect.prop(
    "never offers an unhealthy replica while a healthy one exists",
    [fc.array(fc.boolean(), { minLength: 1, maxLength: 12 })],
    ([healthy]) =>
      Effect.gen(function* () {
        const pool = yield* ReplicaPool
        const { replicas, panic } = pool.candidates()
        const healthyIds = healthy.flatMap((ok, i) => (ok ? [`r${i}`] : []))
        if (healthyIds.length > 0) {
          expect(panic).toBe(false)
          expect(replicas.map((replica) => replica.id)).toEqual(healthyIds)
        } else {
          expect(panic).toBe(true)
          expect(replicas).toHaveLength(healthy.length)
        }
      }).pipe(
        Effect.provide(
          ReplicaPool.layer.pipe(
            Layer.provide(Layer.merge(configLayer(), noOutliers)),
            Layer.provide(
              Layer.succeed(HealthProbe, {
                isHealthy: (id) => healthy[Number(id.slice(1))]!,
                state: () => undefined,
                reportFailure: () => {},
                version: () => 0,
              }),
            ),
            Layer.provide(
              Layer.succeed(Discovery, {
                current: () => healthy.map((_, i) => ({ ...replica(i), id: `r${i}` })),
                version: () => 0,
              }),
            ),
          ),
        ),
      ),
  )
})
