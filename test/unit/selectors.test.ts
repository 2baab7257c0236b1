/** The four Selector layers: tie-breaking, herd damping, staleness fallback and the invariants of DESIGN.md §8. */
import { describe, expect, it } from "@effect/vitest"
import { Effect, FastCheck as fc, Layer, TestClock } from "effect"
import { layer as memoryLeaseLayer } from "../../layers/lease-store/memory.ts"
import { layer as hybridLayer } from "../../layers/selector/hybrid.ts"
import { layer as leaseLayer } from "../../layers/selector/lease.ts"
import { layer as metricsLayer } from "../../layers/selector/metrics.ts"
import { layer as roundRobinLayer } from "../../layers/selector/round-robin.ts"
import type { Replica } from "../../src/domain/Replica.ts"
import { LeaseStore } from "../../src/LeaseStore.ts"
import { Selector } from "../../src/Selector.ts"
import { configLayer, fakeMetrics, replicas, sample } from "./fakes.ts"

const selectorLayers = {
  "round-robin": roundRobinLayer,
  lease: leaseLayer,
  metrics: metricsLayer,
  hybrid: hybridLayer,
}

/** A selector with a real LeaseStore and metrics the test controls. */
const setup = (
  selector: Layer.Layer<Selector, never, never> | (typeof selectorLayers)[keyof typeof selectorLayers],
  env: Record<string, string> = {},
) => {
  const metrics = fakeMetrics()
  const layer = selector.pipe(
    Layer.provideMerge(Layer.mergeAll(memoryLeaseLayer, metrics.layer)),
    Layer.provideMerge(configLayer(env)),
  )
  return { metrics, layer }
}

const countPicks = (
  pick: (candidates: ReadonlyArray<Replica>) => { replica: Replica } | undefined,
  candidates: ReadonlyArray<Replica>,
  picks: number,
) => {
  const counts = new Map<string, number>(candidates.map((replica) => [replica.id, 0]))
  for (let i = 0; i < picks; i++) {
    const decision = pick(candidates)
    counts.set(decision!.replica.id, counts.get(decision!.replica.id)! + 1)
  }
  return [...counts.values()]
}

describe("round-robin", () => {
  it.effect.prop(
    "shares differ by at most one",
    [fc.integer({ min: 1, max: 12 }), fc.integer({ min: 0, max: 500 })],
    ([count, picks]) =>
      Effect.gen(function* () {
        const selector = yield* Selector
        const shares = countPicks(selector.pick, replicas(count), picks)
        expect(Math.max(...shares) - Math.min(...shares)).toBeLessThanOrEqual(1)
      }).pipe(Effect.provide(setup(roundRobinLayer).layer)),
  )
})

describe("lease", () => {
  it.effect("takes turns among equal lease counts instead of always choosing the first", () =>
    Effect.gen(function* () {
      const selector = yield* Selector
      // Every request finishes before the next: every count is 0 at each pick.
      expect(countPicks(selector.pick, replicas(3), 300)).toEqual([100, 100, 100])
    }).pipe(Effect.provide(setup(leaseLayer).layer)),
  )

  it.effect.prop(
    "always picks a replica with the fewest active leases",
    [fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 1, maxLength: 8 })],
    ([leaseCounts]) =>
      Effect.gen(function* () {
        const selector = yield* Selector
        const leases = yield* LeaseStore
        const candidates = replicas(leaseCounts.length)
        leaseCounts.forEach((count, i) => {
          for (let n = 0; n < count; n++) leases.acquire(candidates[i]!.id)
        })
        const chosen = selector.pick(candidates)!
        expect(leases.active(chosen.replica.id)).toBe(Math.min(...leaseCounts))
        expect(chosen.score).toBe(Math.min(...leaseCounts))
      }).pipe(Effect.provide(setup(leaseLayer).layer)),
  )
})

describe("metrics", () => {
  it.effect("prefers the least loaded replica when metrics are fresh", () => {
    const { metrics, layer } = setup(metricsLayer)
    return Effect.gen(function* () {
      const selector = yield* Selector
      const [a, b, c] = replicas(3)
      metrics.samples.set(a!.id, sample(80, 0))
      metrics.samples.set(b!.id, sample(20, 0))
      metrics.samples.set(c!.id, sample(60, 0))
      const decision = selector.pick([a!, b!, c!])!
      expect(decision.replica).toBe(b)
      expect(decision).toMatchObject({ score: 10, freshMetrics: true, fallback: false })
    }).pipe(Effect.provide(layer))
  })

  it.effect("falls back to round-robin, counted, when a replica's metrics are missing", () => {
    const { metrics, layer } = setup(metricsLayer)
    return Effect.gen(function* () {
      const selector = yield* Selector
      const candidates = replicas(3)
      metrics.samples.set(candidates[0]!.id, sample(0, 0))
      const decisions = [0, 1, 2].map(() => selector.pick(candidates)!)
      expect(decisions.map((d) => d.replica.id)).toEqual(candidates.map((r) => r.id))
      expect(decisions.every((d) => d.fallback && d.freshMetrics === false)).toBe(true)
    }).pipe(Effect.provide(layer))
  })

  it.effect("falls back once metrics are older than METRICS_MAX_AGE, and not before", () => {
    const { metrics, layer } = setup(metricsLayer, { METRICS_MAX_AGE: "3" })
    return Effect.gen(function* () {
      const selector = yield* Selector
      const candidates = replicas(2)
      metrics.samples.set(candidates[0]!.id, sample(90, 0))
      metrics.samples.set(candidates[1]!.id, sample(10, 0))
      yield* TestClock.adjust("3 seconds")
      expect(selector.pick(candidates)).toMatchObject({ replica: candidates[1], fallback: false })
      yield* TestClock.adjust("1 millis")
      expect(selector.pick(candidates)!.fallback).toBe(true)
    }).pipe(Effect.provide(layer))
  })

  it.effect("with FALLBACK_ENABLED=false, routes only to replicas with fresh metrics, or refuses", () => {
    const { metrics, layer } = setup(metricsLayer, { FALLBACK_ENABLED: "false" })
    return Effect.gen(function* () {
      const selector = yield* Selector
      const [a, b] = replicas(2)
      metrics.samples.set(b!.id, sample(95, 0))
      expect(countPicks(selector.pick, [a!, b!], 10)).toEqual([0, 10])
      metrics.samples.clear()
      expect(selector.pick([a!, b!])).toBeUndefined()
    }).pipe(Effect.provide(layer))
  })

  it.effect.prop(
    "three equal replicas with one-second-old metrics: no replica gets more than half of 300 picks",
    [fc.tuple(fc.double({ min: 0, max: 100 }), fc.double({ min: 0, max: 5 }), fc.double({ min: 0, max: 5 }))],
    ([[base, noiseB, noiseC]]) => {
      const { metrics, layer } = setup(metricsLayer)
      return Effect.gen(function* () {
        const selector = yield* Selector
        yield* TestClock.adjust("1 second")
        const candidates = replicas(3)
        // Same load give or take sampling noise, all sampled one second ago.
        metrics.samples.set(candidates[0]!.id, sample(base, 0))
        metrics.samples.set(candidates[1]!.id, sample(base + noiseB, 0))
        metrics.samples.set(candidates[2]!.id, sample(base + noiseC, 0))
        const shares = countPicks(selector.pick, candidates, 300)
        expect(Math.max(...shares)).toBeLessThanOrEqual(150)
      }).pipe(Effect.provide(layer))
    },
  )
})

describe("metrics, sample after sample", () => {
  /**
   * A closed loop: every second the replicas report the CPU their share of 300 requests cost them;
   * replica 3 has a quarter of the others' CPU and the load is 70% of the total capacity.
   */
  const simulate = (intervals: number) => {
    const { metrics, layer } = setup(metricsLayer)
    return Effect.gen(function* () {
      const selector = yield* Selector
      const candidates = replicas(3)
      const capacity = [1, 1, 0.25]
      const perInterval = 300
      const fastCapacity = perInterval / (2.25 * 0.7)
      const history: Array<Array<number>> = []
      let picks = [100, 100, 100]
      for (let interval = 0; interval < intervals; interval++) {
        yield* TestClock.adjust("1 second")
        const now = (interval + 1) * 1000
        candidates.forEach((replica, i) => {
          const cpu = Math.min(100, (100 * picks[i]!) / (capacity[i]! * fastCapacity))
          metrics.samples.set(replica.id, sample(cpu, now))
        })
        picks = countPicks(selector.pick, candidates, perInterval)
        history.push(picks)
      }
      return history
    }).pipe(Effect.provide(layer))
  }

  it.effect("converges towards equal CPU: the quarter-size replica gets about a ninth of the work", () =>
    Effect.gen(function* () {
      const history = yield* simulate(30)
      for (const picks of history.slice(-10)) {
        expect(picks[2]! / 300).toBeGreaterThan(0.05)
        expect(picks[2]! / 300).toBeLessThan(0.2)
        expect(Math.abs(picks[0]! - picks[1]!)).toBeLessThan(30)
      }
    }),
  )

  it.effect("never gives a replica more than twice the mean share of an interval", () =>
    Effect.gen(function* () {
      const history = yield* simulate(30)
      for (const picks of history) expect(Math.max(...picks)).toBeLessThanOrEqual(201)
    }),
  )
})

describe("hybrid", () => {
  it.effect("adds LEASE_COUNT_WEIGHT per active lease to the load score", () => {
    const { metrics, layer } = setup(hybridLayer)
    return Effect.gen(function* () {
      const selector = yield* Selector
      const leases = yield* LeaseStore
      const [a, b] = replicas(2)
      metrics.samples.set(a!.id, sample(20, 0)) // score 10
      metrics.samples.set(b!.id, sample(50, 0)) // score 25
      leases.acquire(a!.id)
      leases.acquire(a!.id) // 10 + 2·10 = 30 > 25
      expect(selector.pick([a!, b!])).toMatchObject({ replica: b, score: 25, freshMetrics: true })
    }).pipe(Effect.provide(layer))
  })

  it.effect("falls back to fewest leases, counted, when metrics are missing", () => {
    const { layer } = setup(hybridLayer)
    return Effect.gen(function* () {
      const selector = yield* Selector
      const leases = yield* LeaseStore
      const [a, b] = replicas(2)
      leases.acquire(a!.id)
      expect(selector.pick([a!, b!])).toMatchObject({ replica: b, fallback: true, freshMetrics: false })
    }).pipe(Effect.provide(layer))
  })
})

describe("every selector", () => {
  for (const [algorithm, selectorLayer] of Object.entries(selectorLayers)) {
    it.effect.prop(
      `${algorithm}: picks one of the candidates it is given`,
      [
        fc.integer({ min: 1, max: 10 }),
        fc.array(fc.option(fc.double({ min: 0, max: 100 }), { nil: undefined }), { maxLength: 10 }),
      ],
      ([count, loads]) => {
        const { metrics, layer } = setup(selectorLayer)
        return Effect.gen(function* () {
          const selector = yield* Selector
          const candidates = replicas(count)
          loads.forEach((load, i) => {
            if (load !== undefined && i < count) metrics.samples.set(candidates[i]!.id, sample(load, 0))
          })
          for (let i = 0; i < 20; i++) expect(candidates).toContain(selector.pick(candidates)!.replica)
          expect(selector.algorithm).toBe(algorithm)
        }).pipe(Effect.provide(layer))
      },
    )
  }
})
