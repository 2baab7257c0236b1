/** Passive outlier ejection and slow start, on TestClock time: who is ejected, for how long, and the ramp back. */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Layer, TestClock } from "effect"
import { layer as staticDiscoveryLayer } from "../../layers/discovery/static.ts"
import { layer as consecutiveOutliersLayer } from "../../layers/outlier-detector/consecutive.ts"
import { Discovery } from "../../src/Discovery.ts"
import { HealthProbe } from "../../src/HealthProbe.ts"
import { OutlierDetector } from "../../src/OutlierDetector.ts"
import { ReplicaPool } from "../../src/ReplicaPool.ts"
import { configLayer } from "./fakes.ts"

const ORIGINS = ["http://127.0.0.2:8080", "http://127.0.0.3:8080", "http://127.0.0.4:8080"]
const [A, B] = ["127.0.0.2:8080", "127.0.0.3:8080"]

const allHealthy = Layer.succeed(HealthProbe, {
  isHealthy: () => true,
  state: () => undefined,
  reportFailure: () => {},
  version: () => 0,
})

/** Three static replicas, always healthy, ejected after 3 failures in a row for 10 s (doubling). */
const poolWith = (env: Record<string, string> = {}) =>
  ReplicaPool.layer.pipe(
    Layer.provideMerge(consecutiveOutliersLayer),
    Layer.provide(allHealthy),
    Layer.provideMerge(staticDiscoveryLayer),
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

/** Discovery over whatever ids were set last. */
let known: Array<string> = []
let revision = 0
const setKnown = (ids: Array<string>) => {
  known = ids
  revision++
}
const changingDiscovery = Layer.succeed(Discovery, {
  current: () => known.map((id) => ({ id, name: id, origin: `http://${id}`, node: undefined })),
  version: () => revision,
})

const candidateIds = Effect.map(ReplicaPool, (pool) =>
  pool.candidates().replicas.map((replica) => replica.id),
)

const failTimes = (replicaId: string, times: number) =>
  Effect.map(OutlierDetector, (outliers) => {
    for (let i = 0; i < times; i++) outliers.reportFailure(replicaId, "connect")
  })

describe("OutlierDetector (consecutive failures)", () => {
  it.effect("ejects after the threshold of failures in a row, for exactly OUTLIER_EJECTION_TIME", () =>
    Effect.gen(function* () {
      const outliers = yield* OutlierDetector
      outliers.reportFailure(A, "connect")
      outliers.reportFailure(A, "reset")
      outliers.reportSuccess(A)
      outliers.reportFailure(A, "timeout")
      outliers.reportFailure(A, "5xx")
      expect(outliers.isEjected(A)).toBe(false)
      outliers.reportFailure(A, "5xx")
      expect(outliers.isEjected(A)).toBe(true)
      expect(yield* candidateIds).not.toContain(A)

      yield* TestClock.adjust(Duration.millis(9_999))
      expect(outliers.isEjected(A)).toBe(true)
      yield* TestClock.adjust(Duration.millis(1))
      expect(outliers.isEjected(A)).toBe(false)
      expect(yield* candidateIds).toContain(A)
      expect(outliers.totalEjections()).toBe(1)
    }).pipe(Effect.provide(poolWith())),
  )

  it.effect("doubles the ejection each time, up to the maximum, and forgets as the replica stays in", () =>
    Effect.gen(function* () {
      const outliers = yield* OutlierDetector
      const ejectionLength = Effect.gen(function* () {
        yield* failTimes(A, 3)
        let seconds = 0
        while (outliers.isEjected(A)) {
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
      for (let i = 0; i < 10; i++) outliers.reportFailure(A, "5xx")
      expect(outliers.isEjected(A)).toBe(false)
      yield* failTimes(A, 3)
      expect(outliers.isEjected(A)).toBe(true)
    }).pipe(Effect.provide(poolWith({ OUTLIER_5XX: "false" }))),
  )

  it.effect("ejects nothing when OUTLIER_CONSECUTIVE_FAILURES is 0", () =>
    Effect.gen(function* () {
      yield* failTimes(A, 100)
      expect((yield* OutlierDetector).isEjected(A)).toBe(false)
    }).pipe(Effect.provide(poolWith({ OUTLIER_CONSECUTIVE_FAILURES: "0" }))),
  )

  it.effect("ejects at most OUTLIER_MAX_EJECTED_PERCENT of the replicas, but always one", () =>
    Effect.gen(function* () {
      const outliers = yield* OutlierDetector
      yield* failTimes(A, 3)
      yield* failTimes(B, 3)
      // 50 % of 3 replicas is one: the second failing replica stays in.
      expect([outliers.isEjected(A), outliers.isEjected(B)]).toEqual([true, false])
      expect(yield* candidateIds).toHaveLength(2)
      // Once the first is readmitted, the second's next failure may eject it.
      yield* TestClock.adjust(Duration.seconds(10))
      yield* failTimes(B, 1)
      expect([outliers.isEjected(A), outliers.isEjected(B)]).toEqual([false, true])
    }).pipe(Effect.provide(poolWith({ OUTLIER_MAX_EJECTED_PERCENT: "50" }))),
  )
})

describe("OutlierDetector and a changing service", () => {
  it.effect("a replica that leaves while ejected gives its place back, so its successor can be ejected", () =>
    Effect.gen(function* () {
      setKnown(["a", "b"])
      const outliers = yield* OutlierDetector
      yield* failTimes("a", 3)
      expect(outliers.isEjected("a")).toBe(true)
      // One ejection at a time among two replicas: "b" stays in while "a" holds the place.
      yield* failTimes("b", 3)
      expect(outliers.isEjected("b")).toBe(false)
      // Swarm replaced "a" with "c"; the sweep after 30 s frees the place "a" held for 300 s.
      setKnown(["b", "c"])
      yield* TestClock.adjust(Duration.seconds(30))
      yield* failTimes("b", 1)
      expect(outliers.isEjected("b")).toBe(true)
      expect(outliers.state("a")).toBeUndefined()
    }).pipe(
      Effect.provide(
        consecutiveOutliersLayer.pipe(
          Layer.provide(changingDiscovery),
          Layer.provide(
            configLayer({
              OUTLIER_CONSECUTIVE_FAILURES: "3",
              OUTLIER_EJECTION_TIME: "300",
              OUTLIER_MAX_EJECTED_PERCENT: "50",
            }),
          ),
        ),
      ),
    ),
  )
})

describe("slow start", () => {
  /** How many of `offers` picks of `replicaId` slow start lets through. */
  const admitted = (offers: number, replicaId: string) =>
    Effect.map(ReplicaPool, (pool) => {
      const { replicas, deferred } = pool.candidates()
      const replica = replicas.find((candidate) => candidate.id === replicaId)!
      let taken = 0
      for (let i = 0; i < offers; i++) if (!deferred?.(replica)) taken++
      return taken
    })

  it.effect("ramps a readmitted replica's share from 10 % to all of it over SLOW_START", () =>
    Effect.gen(function* () {
      // The replicas present from the start do not ramp.
      expect((yield* ReplicaPool).candidates().deferred).toBeUndefined()
      yield* failTimes(A, 3)
      yield* TestClock.adjust(Duration.seconds(10))
      expect(yield* candidateIds).toContain(A)

      expect(yield* admitted(100, A)).toBe(10)
      expect(yield* admitted(100, B)).toBe(100)
      yield* TestClock.adjust(Duration.seconds(5))
      expect(yield* admitted(100, A)).toBe(50)
      yield* TestClock.adjust(Duration.seconds(5))
      expect((yield* ReplicaPool).candidates().deferred).toBeUndefined()
      expect(yield* admitted(100, A)).toBe(100)
    }).pipe(Effect.provide(poolWith({ SLOW_START: "10" }))),
  )

  it.effect("leaves every pick alone when SLOW_START is 0", () =>
    Effect.gen(function* () {
      yield* failTimes(A, 3)
      yield* TestClock.adjust(Duration.seconds(10))
      expect((yield* ReplicaPool).candidates().deferred).toBeUndefined()
    }).pipe(Effect.provide(poolWith())),
  )
})
