/** Passive outlier ejection, on TestClock time: who is ejected, for how long, and who may be. */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Layer, TestClock } from "effect"
import { layer as staticDiscoveryLayer } from "../../layers/discovery/static.ts"
import { layer as noMetricsLayer } from "../../layers/metrics-source/none.ts"
import { layer as consecutiveOutliersLayer } from "../../layers/outlier-detector/consecutive.ts"
import type { Replica } from "../../src/domain/Replica.ts"
import { OutlierDetector } from "../../src/OutlierDetector.ts"
import { ReplicaPool } from "../../src/ReplicaPool.ts"
import { configLayer, fakeDiscovery } from "./fakes.ts"

const ORIGINS = ["http://127.0.0.2:8080", "http://127.0.0.3:8080", "http://127.0.0.4:8080"]
const [A, B] = ["127.0.0.2:8080", "127.0.0.3:8080"]

/** Three static replicas, always healthy, ejected after 3 failures in a row for 10 s (doubling). */
const poolWith = (env: Record<string, string> = {}) =>
  consecutiveOutliersLayer.pipe(
    Layer.provideMerge(ReplicaPool.layer),
    Layer.provide(Layer.merge(staticDiscoveryLayer, noMetricsLayer)),
    Layer.provide(
      configLayer({
        REPLICAS: ORIGINS.join(","),
        OUTLIER_CONSECUTIVE_FAILURES: "3",
        OUTLIER_EJECTION_TIME: "10",
        OUTLIER_MAX_EJECTION_TIME: "35",
        ...env,
      }),
    ),
  )

const endpointOf = (replicaId: string) =>
  Effect.map(ReplicaPool, (pool) => pool.endpoints().find((endpoint) => endpoint.id === replicaId)!)

const candidateIds = Effect.map(ReplicaPool, (pool) =>
  pool.candidates().endpoints.map((endpoint) => endpoint.id),
)

const failTimes = (replicaId: string, times: number) =>
  Effect.gen(function* () {
    const outliers = yield* OutlierDetector
    const endpoint = yield* endpointOf(replicaId)
    for (let i = 0; i < times; i++) outliers.reportFailure(endpoint, "connect")
  })

describe("OutlierDetector (consecutive failures)", () => {
  it.effect("ejects after the threshold of failures in a row, for exactly OUTLIER_EJECTION_TIME", () =>
    Effect.gen(function* () {
      const outliers = yield* OutlierDetector
      const a = yield* endpointOf(A)
      outliers.reportFailure(a, "connect")
      outliers.reportFailure(a, "reset")
      outliers.reportSuccess(a)
      outliers.reportFailure(a, "timeout")
      outliers.reportFailure(a, "5xx")
      expect(a.ejected).toBe(false)
      outliers.reportFailure(a, "5xx")
      expect(a.ejected).toBe(true)
      expect(yield* candidateIds).not.toContain(A)

      yield* TestClock.adjust(Duration.millis(9_999))
      expect(a.ejected).toBe(true)
      yield* TestClock.adjust(Duration.millis(1))
      expect(a.ejected).toBe(false)
      expect(yield* candidateIds).toContain(A)
      expect(outliers.totalEjections()).toBe(1)
    }).pipe(Effect.provide(poolWith())),
  )

  it.effect("doubles the ejection each time, up to the maximum, and forgets as the replica stays in", () =>
    Effect.gen(function* () {
      const a = yield* endpointOf(A)
      const ejectionLength = Effect.gen(function* () {
        yield* failTimes(A, 3)
        let seconds = 0
        while (a.ejected) {
          yield* TestClock.adjust(Duration.seconds(1))
          seconds++
        }
        return seconds
      })
      expect([yield* ejectionLength, yield* ejectionLength, yield* ejectionLength]).toEqual([10, 20, 35])
      // Each OUTLIER_EJECTION_TIME spent in takes one doubling off: 40 s take all three.
      yield* TestClock.adjust(Duration.seconds(40))
      expect(yield* ejectionLength).toBe(10)
    }).pipe(Effect.provide(poolWith())),
  )

  it.effect("counts 5xx answers only with OUTLIER_5XX, and ejects nothing with a threshold of 0", () =>
    Effect.gen(function* () {
      const outliers = yield* OutlierDetector
      const a = yield* endpointOf(A)
      for (let i = 0; i < 10; i++) outliers.reportFailure(a, "5xx")
      expect(a.ejected).toBe(false)
      yield* failTimes(A, 3)
      expect(a.ejected).toBe(true)
    }).pipe(Effect.provide(poolWith({ OUTLIER_5XX: "false" }))),
  )

  it.effect("ejects nothing when OUTLIER_CONSECUTIVE_FAILURES is 0", () =>
    Effect.gen(function* () {
      yield* failTimes(A, 100)
      expect((yield* endpointOf(A)).ejected).toBe(false)
      expect((yield* OutlierDetector).totalEjections()).toBe(0)
    }).pipe(Effect.provide(poolWith({ OUTLIER_CONSECUTIVE_FAILURES: "0" }))),
  )

  it.effect("ejects at most OUTLIER_MAX_EJECTED_PERCENT of the replicas, but always one", () =>
    Effect.gen(function* () {
      const [a, b] = [yield* endpointOf(A), yield* endpointOf(B)]
      yield* failTimes(A, 3)
      yield* failTimes(B, 3)
      // 50 % of 3 replicas is one: the second failing replica stays in.
      expect([a.ejected, b.ejected]).toEqual([true, false])
      expect(yield* candidateIds).toHaveLength(2)
      // Once the first is readmitted, the second's next failure may eject it.
      yield* TestClock.adjust(Duration.seconds(10))
      yield* failTimes(B, 1)
      expect([a.ejected, b.ejected]).toEqual([false, true])
    }).pipe(Effect.provide(poolWith({ OUTLIER_MAX_EJECTED_PERCENT: "50" }))),
  )
})

describe("OutlierDetector and a changing service", () => {
  const named = (id: string): Replica => ({ id, name: id, origin: `http://${id}`, node: undefined })

  it.effect(
    "a replica that leaves while ejected gives its place back at once, so its successor can be",
    () => {
      const discovery = fakeDiscovery([named("a"), named("b")])
      return Effect.gen(function* () {
        const pool = yield* ReplicaPool
        const a = yield* endpointOf("a")
        const b = yield* endpointOf("b")
        yield* failTimes("a", 3)
        expect(a.ejected).toBe(true)
        // One ejection at a time among two replicas: "b" stays in while "a" holds the place.
        yield* failTimes("b", 3)
        expect(b.ejected).toBe(false)
        // Swarm replaced "a" with "c": the place "a" held for 300 s is free at once, with its state.
        discovery.set([named("b"), named("c")])
        yield* failTimes("b", 1)
        expect(b.ejected).toBe(true)
        expect(a.retired).toBe(true)
        expect(pool.endpoints().map((endpoint) => endpoint.id)).toEqual(["b", "c"])
        // Its readmission, when due, leaves the retired endpoint alone.
        yield* TestClock.adjust(Duration.seconds(300))
        expect(a.ejection.readmittedAt).toBeUndefined()
      }).pipe(
        Effect.provide(
          consecutiveOutliersLayer.pipe(
            Layer.provideMerge(ReplicaPool.layer),
            Layer.provide(Layer.merge(discovery.layer, noMetricsLayer)),
            Layer.provide(
              configLayer({
                OUTLIER_CONSECUTIVE_FAILURES: "3",
                OUTLIER_EJECTION_TIME: "300",
                OUTLIER_MAX_EJECTED_PERCENT: "50",
              }),
            ),
          ),
        ),
      )
    },
  )
})
