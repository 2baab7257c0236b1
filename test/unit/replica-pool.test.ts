/**
 * The ReplicaPool: one endpoint per discovered replica, retired with its state when the replica
 * leaves; the candidates (healthy, admitted); slow start's weight ramp, on TestClock time.
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, FastCheck as fc, Layer, TestClock } from "effect"
import { layer as staticDiscoveryLayer } from "../../layers/discovery/static.ts"
import { layer as consecutiveOutliersLayer } from "../../layers/outlier-detector/consecutive.ts"
import { selectorLayers } from "../../layers/selector/registry.ts"
import type { Endpoint } from "../../src/Endpoint.ts"
import { OutlierDetector } from "../../src/OutlierDetector.ts"
import { ReplicaPool } from "../../src/ReplicaPool.ts"
import { Selector } from "../../src/Selector.ts"
import { configLayer, fakeDiscovery, fakeMetrics, replica, sample } from "./fakes.ts"

/** A pool over `discovery`, with metrics the test sets. */
const poolOver = (discovery: ReturnType<typeof fakeDiscovery>, env: Record<string, string> = {}) => {
  const metrics = fakeMetrics()
  const layer = ReplicaPool.layer.pipe(
    Layer.provide(Layer.merge(discovery.layer, metrics.layer)),
    Layer.provide(configLayer(env)),
  )
  return { metrics, layer }
}

const ids = (endpoints: ReadonlyArray<Endpoint>) => endpoints.map((endpoint) => endpoint.id)

describe("ReplicaPool and discovery", () => {
  it.effect("gives each discovered replica an endpoint, in discovery's order, kept while it stays", () => {
    const discovery = fakeDiscovery([replica(1), replica(2)])
    return Effect.gen(function* () {
      const pool = yield* ReplicaPool
      const [a, b] = pool.endpoints()
      expect(a!.replica).toEqual(replica(1))
      expect(b!.replica).toEqual(replica(2))
      discovery.set([replica(3), replica(2), replica(1)])
      const next = pool.endpoints()
      expect(ids(next)).toEqual(["replica-3", "replica-2", "replica-1"])
      expect(next[1]).toBe(b)
      expect(next[2]).toBe(a)
    }).pipe(Effect.provide(poolOver(discovery).layer))
  })

  it.effect("retires the endpoint of a replica discovery drops, with all its state, at once", () => {
    const discovery = fakeDiscovery([replica(1), replica(2), replica(3)])
    return Effect.gen(function* () {
      const pool = yield* ReplicaPool
      const [a, b, c] = pool.endpoints()
      let closed = 0
      a!.upstream = {
        close: () => {
          closed++
          return Promise.resolve()
        },
        destroy: () => Promise.reject(new Error("a retired endpoint's requests may finish")),
      }
      a!.picks = 5
      a!.health.healthy = false
      discovery.set([replica(2), replica(3)])
      expect(pool.endpoints()).toEqual([b, c])
      expect(pool.candidates().endpoints).toEqual([b, c])
      expect([a!.retired, b!.retired, c!.retired]).toEqual([true, false, false])
      expect(closed).toBe(1)
      // Back again, the replica starts afresh: nothing of the retired endpoint is carried over.
      discovery.set([replica(1), replica(2), replica(3)])
      const again = pool.endpoints()[0]!
      expect(again).not.toBe(a)
      expect(again.retired).toBe(false)
      expect(again.picks).toBe(0)
      expect(again.health.healthy).toBe(true)
      expect(pool.candidates().endpoints).toEqual([again, b, c])
    }).pipe(Effect.provide(poolOver(discovery).layer))
  })

  it.effect("gives a replica whose origin changed under the same id a new endpoint", () => {
    const discovery = fakeDiscovery([replica(1)])
    return Effect.gen(function* () {
      const pool = yield* ReplicaPool
      const [before] = pool.endpoints()
      discovery.set([{ ...replica(1), origin: "http://10.0.9.9:8080" }])
      const [after] = pool.endpoints()
      expect(after).not.toBe(before)
      expect(before!.retired).toBe(true)
      expect(after!.replica.origin).toBe("http://10.0.9.9:8080")
    }).pipe(Effect.provide(poolOver(discovery).layer))
  })

  it.effect("copies each replica's latest metrics into its endpoint", () => {
    const discovery = fakeDiscovery([replica(1), replica(2)])
    const { metrics, layer } = poolOver(discovery)
    return Effect.gen(function* () {
      const pool = yield* ReplicaPool
      const [a, b] = pool.endpoints()
      expect(a!.metrics).toBeUndefined()
      metrics.set(a!.id, sample(40, 0))
      pool.candidates()
      expect(a!.metrics).toEqual(sample(40, 0))
      expect(b!.metrics).toBeUndefined()
      metrics.clear()
      pool.endpoints()
      expect(a!.metrics).toBeUndefined()
    }).pipe(Effect.provide(layer))
  })
})

describe("ReplicaPool candidates", () => {
  it.effect.prop(
    "never offers an unhealthy replica while a healthy one exists",
    [fc.array(fc.boolean(), { minLength: 1, maxLength: 12 })],
    ([healthy]) => {
      const discovery = fakeDiscovery(healthy.map((_, i) => ({ ...replica(i), id: `r${i}` })))
      return Effect.gen(function* () {
        const pool = yield* ReplicaPool
        pool.endpoints().forEach((endpoint, i) => {
          endpoint.health.healthy = healthy[i]!
        })
        pool.invalidate()
        const { endpoints, panic } = pool.candidates()
        const healthyIds = healthy.flatMap((ok, i) => (ok ? [`r${i}`] : []))
        if (healthyIds.length > 0) {
          expect(panic).toBe(false)
          expect(ids(endpoints)).toEqual(healthyIds)
        } else {
          expect(panic).toBe(true)
          expect(endpoints).toHaveLength(healthy.length)
        }
      }).pipe(Effect.provide(poolOver(discovery).layer))
    },
  )
})

describe("slow start", () => {
  const ORIGINS = ["http://127.0.0.2:8080", "http://127.0.0.3:8080"]
  const A = "127.0.0.2:8080"

  /** Two static replicas, a round-robin selector, ejection after 3 failures in a row for 10 s. */
  const poolWith = (env: Record<string, string>) =>
    Layer.merge(selectorLayers["round-robin"], consecutiveOutliersLayer).pipe(
      Layer.provideMerge(ReplicaPool.layer),
      Layer.provide(Layer.merge(staticDiscoveryLayer, fakeMetrics().layer)),
      Layer.provide(
        configLayer({
          REPLICAS: ORIGINS.join(","),
          OUTLIER_CONSECUTIVE_FAILURES: "3",
          OUTLIER_EJECTION_TIME: "10",
          ...env,
        }),
      ),
    )

  /** Ejects replica A and waits for its readmission (OUTLIER_EJECTION_TIME later); returns it. */
  const ejectAndReadmit = Effect.gen(function* () {
    const pool = yield* ReplicaPool
    const outliers = yield* OutlierDetector
    const a = pool.endpoints().find((endpoint) => endpoint.id === A)!
    for (let i = 0; i < 3; i++) outliers.reportFailure(a, "connect")
    expect(a.ejected).toBe(true)
    yield* TestClock.adjust(Duration.seconds(10))
    expect(pool.candidates().endpoints).toContain(a)
    return a
  })

  /** How many of `picks` round-robin picks over the pool's candidates go to `endpoint`. */
  const picksOf = (endpoint: Endpoint, picks: number) =>
    Effect.gen(function* () {
      const pool = yield* ReplicaPool
      const selector = yield* Selector
      let taken = 0
      for (let i = 0; i < picks; i++) if (selector.pick(pool.candidates())!.endpoint === endpoint) taken++
      return taken
    })

  const weights = Effect.map(ReplicaPool, (pool) =>
    pool.candidates().endpoints.map((endpoint) => endpoint.effectiveWeight),
  )

  it.effect("ramps a readmitted replica's share from 10 % to all of it over SLOW_START", () =>
    Effect.gen(function* () {
      const pool = yield* ReplicaPool
      // The replicas present from the start do not ramp.
      expect(pool.candidates().uniform).toBe(true)
      expect(yield* weights).toEqual([1, 1])
      const a = yield* ejectAndReadmit
      const b = pool.endpoints().find((endpoint) => endpoint !== a)!

      // Just readmitted: a tenth of its weight, so 10 of 110 picks beside a replica at full weight.
      expect(pool.candidates().uniform).toBe(false)
      expect(Math.abs(a.effectiveWeight - 0.1)).toBeLessThanOrEqual(0.01)
      expect(b.effectiveWeight).toBe(1)
      expect(yield* picksOf(a, 110)).toBe(10)

      // Half the window later, half its weight: 50 of 150 picks.
      yield* TestClock.adjust(Duration.seconds(5))
      pool.candidates()
      expect(Math.abs(a.effectiveWeight - 0.5)).toBeLessThanOrEqual(0.01)
      expect(b.effectiveWeight).toBe(1)
      expect(yield* picksOf(a, 150)).toBe(50)

      // At the end of the window, all of it: the candidates are uniform again and share evenly.
      yield* TestClock.adjust(Duration.seconds(5))
      expect(pool.candidates().uniform).toBe(true)
      expect(yield* weights).toEqual([1, 1])
      expect(yield* picksOf(a, 100)).toBe(50)
    }).pipe(Effect.provide(poolWith({ SLOW_START: "10" }))),
  )

  it.effect("steps a warming replica's weight up as time passes, not only at the window's marks", () =>
    Effect.gen(function* () {
      const pool = yield* ReplicaPool
      const a = yield* ejectAndReadmit
      // The floor holds for the window's first tenth; then, every 250 ms, the weight has climbed to
      // within one step of elapsed/SLOW_START.
      yield* TestClock.adjust(Duration.seconds(1))
      pool.candidates()
      let previous = a.effectiveWeight
      expect(Math.abs(previous - 0.1)).toBeLessThanOrEqual(0.01)
      for (let elapsedMs = 1250; elapsedMs <= 2500; elapsedMs += 250) {
        yield* TestClock.adjust(Duration.millis(250))
        pool.candidates()
        expect(a.effectiveWeight).toBeGreaterThan(previous)
        expect(Math.abs(a.effectiveWeight - elapsedMs / 10_000)).toBeLessThanOrEqual(0.01)
        previous = a.effectiveWeight
      }
    }).pipe(Effect.provide(poolWith({ SLOW_START: "10" }))),
  )

  it.effect("leaves every weight alone when SLOW_START is 0", () =>
    Effect.gen(function* () {
      const pool = yield* ReplicaPool
      yield* ejectAndReadmit
      expect(pool.candidates().uniform).toBe(true)
      expect(yield* weights).toEqual([1, 1])
    }).pipe(Effect.provide(poolWith({}))),
  )

  it.effect("ramps a replica that joins a running pool, but not the pool's first replicas", () => {
    const discovery = fakeDiscovery([replica(1), replica(2)])
    return Effect.gen(function* () {
      const pool = yield* ReplicaPool
      expect(pool.candidates().uniform).toBe(true)
      yield* TestClock.adjust(Duration.seconds(30))
      discovery.set([replica(1), replica(2), replica(3)])
      const { endpoints, uniform } = pool.candidates()
      expect(uniform).toBe(false)
      expect(endpoints.map((endpoint) => endpoint.effectiveWeight)).toEqual([1, 1, 0.1])
      yield* TestClock.adjust(Duration.seconds(10))
      expect(pool.candidates().uniform).toBe(true)
      expect(endpoints.map((endpoint) => endpoint.effectiveWeight)).toEqual([1, 1, 1])
    }).pipe(Effect.provide(poolOver(discovery, { SLOW_START: "10" }).layer))
  })
})
