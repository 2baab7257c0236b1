/**
 * The Selector layers: tie-breaking, herd damping, staleness fallback, learning from exchanges, and the
 * invariants of DESIGN.md §8.
 */
import { describe, expect, it } from "@effect/vitest"
import { Clock, Effect, FastCheck as fc, Layer, Random, TestClock } from "effect"
import { layer as memoryLeaseLayer } from "../../layers/lease-store/memory.ts"
import { layer as adaptiveLayer } from "../../layers/selector/adaptive.ts"
import { layer as hybridLayer } from "../../layers/selector/hybrid.ts"
import { layer as leaseLayer } from "../../layers/selector/lease.ts"
import { layer as metricsLayer } from "../../layers/selector/metrics.ts"
import { layer as roundRobinLayer } from "../../layers/selector/round-robin.ts"
import type { Replica } from "../../src/domain/Replica.ts"
import { type Lease, LeaseStore } from "../../src/LeaseStore.ts"
import { Selector } from "../../src/Selector.ts"
import { configLayer, fakeMetrics, replicas, sample } from "./fakes.ts"

const selectorLayers = {
  "round-robin": roundRobinLayer,
  lease: leaseLayer,
  metrics: metricsLayer,
  hybrid: hybridLayer,
  adaptive: adaptiveLayer,
}

/** A selector with a real LeaseStore, metrics the test controls and a fixed random seed. */
const setup = (
  selector: Layer.Layer<Selector, never, never> | (typeof selectorLayers)[keyof typeof selectorLayers],
  env: Record<string, string> = {},
  seed = 1,
) => {
  const metrics = fakeMetrics()
  const layer = selector.pipe(
    Layer.provideMerge(Layer.mergeAll(memoryLeaseLayer, metrics.layer)),
    Layer.provideMerge(configLayer(env)),
    Layer.provide(Layer.setRandom(Random.make(seed))),
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

describe("adaptive", () => {
  interface Outcome {
    readonly latencyMs: number
    readonly ok: boolean
  }
  interface InFlight extends Outcome {
    readonly lease: Lease
    readonly endsAt: number
  }

  /**
   * Open-loop traffic: every `tickMs`, `perTick` requests arrive, each holding a lease until its
   * exchange ends `latencyMs` later and is reported. `outcome` says how replica `index` answers at
   * `tick`. Returns the replica index of every pick, once every exchange has ended. (Each TestClock
   * step yields to the event loop, so requests arrive in small bursts to keep the steps few.)
   */
  const simulate = (
    candidates: ReadonlyArray<Replica>,
    ticks: number,
    tickMs: number,
    perTick: number,
    outcome: (index: number, tick: number) => Outcome,
  ) =>
    Effect.gen(function* () {
      const selector = yield* Selector
      const leases = yield* LeaseStore
      const inFlight: Array<InFlight> = []
      const picked: Array<number> = []
      const endDue = (now: number) => {
        for (let k = inFlight.length - 1; k >= 0; k--) {
          const exchange = inFlight[k]!
          if (exchange.endsAt > now) continue
          inFlight.splice(k, 1)
          leases.release(exchange.lease)
          selector.observe(exchange.lease.replicaId, exchange.latencyMs, exchange.ok)
        }
      }
      for (let tick = 0; tick < ticks; tick++) {
        yield* TestClock.adjust(`${tickMs} millis`)
        const now = yield* Clock.currentTimeMillis
        endDue(now)
        for (let n = 0; n < perTick; n++) {
          const index = candidates.indexOf(selector.pick(candidates)!.replica)
          picked.push(index)
          const answer = outcome(index, tick)
          const lease = leases.acquire(candidates[index]!.id)
          inFlight.push({ ...answer, lease, endsAt: now + answer.latencyMs })
        }
      }
      yield* TestClock.adjust("1 second")
      endDue(yield* Clock.currentTimeMillis)
      return picked
    })

  const sharesOf = (picked: ReadonlyArray<number>, count: number) => {
    const shares = new Array<number>(count).fill(0)
    for (const index of picked) shares[index]!++
    return shares.map((share) => share / picked.length)
  }

  const answering =
    (...latencies: ReadonlyArray<number>) =>
    (index: number): Outcome => ({ latencyMs: latencies[index]!, ok: true })

  it.effect("takes turns among replicas nothing tells apart", () =>
    Effect.gen(function* () {
      const selector = yield* Selector
      expect(countPicks(selector.pick, replicas(3), 300)).toEqual([100, 100, 100])
    }).pipe(Effect.provide(setup(adaptiveLayer).layer)),
  )

  it.effect.prop(
    "with nothing observed and nothing in flight, shares differ by at most one",
    [fc.integer({ min: 1, max: 12 }), fc.integer({ min: 0, max: 500 })],
    ([count, picks]) =>
      Effect.gen(function* () {
        const selector = yield* Selector
        const shares = countPicks(selector.pick, replicas(count), picks)
        expect(Math.max(...shares) - Math.min(...shares)).toBeLessThanOrEqual(1)
      }).pipe(Effect.provide(setup(adaptiveLayer).layer)),
  )

  it.effect.prop(
    "never picks the replica with strictly the most requests in flight, whatever the latencies",
    [
      fc.array(fc.tuple(fc.integer({ min: 0, max: 5 }), fc.integer({ min: 1, max: 500 })), {
        minLength: 2,
        maxLength: 8,
      }),
      fc.integer(),
    ],
    ([replicaStates, seed]) =>
      Effect.gen(function* () {
        const selector = yield* Selector
        const leases = yield* LeaseStore
        const candidates = replicas(replicaStates.length)
        replicaStates.forEach(([active, latencyMs], i) => {
          selector.observe(candidates[i]!.id, latencyMs, true)
          for (let n = 0; n < active; n++) leases.acquire(candidates[i]!.id)
        })
        const counts = replicaStates.map(([active]) => active)
        const most = Math.max(...counts)
        const busiest = counts.filter((count) => count === most).length === 1 ? counts.indexOf(most) : -1
        for (let i = 0; i < 20; i++) {
          const decision = selector.pick(candidates)!
          expect(decision.replica).not.toBe(candidates[busiest])
          expect(decision.fallback).toBe(false)
        }
      }).pipe(Effect.provide(setup(adaptiveLayer, {}, seed).layer)),
  )

  it.effect("gives a replica that answers four times slower a clearly smaller share", () =>
    Effect.gen(function* () {
      const candidates = replicas(3)
      // One at a time, then about five requests in flight.
      const sequential = sharesOf(yield* simulate(candidates, 300, 50, 1, answering(10, 10, 40)), 3)
      expect(sequential[2]).toBeLessThan(0.05)
      const busy = sharesOf(yield* simulate(candidates, 300, 10, 4, answering(10, 10, 40)), 3)
      expect(busy[2]).toBeLessThan(0.5 * Math.min(busy[0]!, busy[1]!))
    }).pipe(Effect.provide(setup(adaptiveLayer).layer)),
  )

  it.effect("gives a replica that fails fast a small share, even when the others are busier", () =>
    Effect.gen(function* () {
      const candidates = replicas(3)
      const failingFast = (index: number): Outcome =>
        index === 2 ? { latencyMs: 1, ok: false } : { latencyMs: 10, ok: true }
      const sequential = sharesOf(yield* simulate(candidates, 300, 50, 1, failingFast), 3)
      expect(sequential[2]).toBeLessThan(0.05)
      // A few requests in flight on the healthy replicas, none on the failing one.
      const busy = sharesOf(yield* simulate(candidates, 300, 10, 4, failingFast), 3)
      expect(busy[2]).toBeLessThan(0.05)
    }).pipe(Effect.provide(setup(adaptiveLayer).layer)),
  )

  it.effect("counts a quick failure as a slow exchange: failing one in five costs a replica its share", () =>
    Effect.gen(function* () {
      let answered = 0
      const flaky = (index: number): Outcome =>
        index === 2 && ++answered % 5 === 0 ? { latencyMs: 1, ok: false } : { latencyMs: 10, ok: true }
      const shares = sharesOf(yield* simulate(replicas(3), 300, 50, 1, flaky), 3)
      expect(shares[2]).toBeLessThan(0.1)
    }).pipe(Effect.provide(setup(adaptiveLayer).layer)),
  )

  it.effect("avoids a hot replica, however fast it answers", () =>
    Effect.gen(function* () {
      const selector = yield* Selector
      const leases = yield* LeaseStore
      const [a, b, c] = replicas(3)
      for (let n = 0; n < 20; n++) {
        selector.observe(a!.id, 1, true)
        selector.observe(b!.id, 50, true)
        selector.observe(c!.id, 50, true)
      }
      // Cold, a wins every comparison it is in: two picks in three.
      expect(countPicks(selector.pick, [a!, b!, c!], 30)[0]).toBeGreaterThan(15)
      for (let n = 0; n < 3; n++) leases.acquire(a!.id)
      expect(countPicks(selector.pick, [a!, b!, c!], 30)[0]).toBe(0)
    }).pipe(Effect.provide(setup(adaptiveLayer).layer)),
  )

  it.effect("lets a replica that was slow win its share back once it has recovered", () =>
    Effect.gen(function* () {
      const candidates = replicas(3)
      // A request every 200 ms: replica 3 takes 100 ms for the first 20 s, then 10 ms like the others.
      const recovering = (index: number, tick: number): Outcome => ({
        latencyMs: index === 2 && tick < 100 ? 100 : 10,
        ok: true,
      })
      const picked = yield* simulate(candidates, 300, 200, 1, recovering)
      expect(sharesOf(picked.slice(0, 100), 3)[2]).toBeLessThan(0.05)
      // Within a few ADAPTIVE_DECAY windows (5 s) of recovering, it has its third again.
      expect(sharesOf(picked.slice(200), 3)[2]).toBeGreaterThan(0.28)
    }).pipe(Effect.provide(setup(adaptiveLayer).layer)),
  )

  it.effect("tries a new replica at the typical latency without flooding it", () =>
    Effect.gen(function* () {
      const selector = yield* Selector
      const known = replicas(3)
      for (let n = 0; n < 20; n++) for (const replica of known) selector.observe(replica.id, 10, true)
      const withNew = [...known, ...replicas(4).slice(3)]
      const shares = countPicks(selector.pick, withNew, 400)
      expect(shares[3]).toBeGreaterThan(50)
      expect(shares[3]).toBeLessThan(150)
    }).pipe(Effect.provide(setup(adaptiveLayer).layer)),
  )

  it.effect("scales latency mildly by CPU only when both replicas have fresh metrics", () => {
    const { metrics, layer } = setup(adaptiveLayer, { METRICS_MAX_AGE: "3" })
    return Effect.gen(function* () {
      const selector = yield* Selector
      const [a, b] = replicas(2)
      for (let n = 0; n < 20; n++) {
        selector.observe(a!.id, 10, true)
        selector.observe(b!.id, 10, true)
      }
      // Equal latency, and a alone at full CPU: a's estimate is half as large again.
      metrics.samples.set(a!.id, sample(100, 0))
      metrics.samples.set(b!.id, sample(0, 0))
      const fresh = [0, 1, 2, 3].map(() => selector.pick([a!, b!])!)
      expect(fresh.map((decision) => decision.replica)).toEqual([b, b, b, b])
      expect(fresh[0]).toMatchObject({ score: 10, freshMetrics: true, fallback: false })
      // Stale metrics are left out, and nothing falls back: the replicas take turns again.
      yield* TestClock.adjust("4 seconds")
      const stale = [0, 1, 2, 3].map(() => selector.pick([a!, b!])!)
      expect(stale.map((decision) => decision.replica)).toEqual([a, b, a, b])
      expect(stale.every((decision) => decision.freshMetrics === false && !decision.fallback)).toBe(true)
    }).pipe(Effect.provide(layer))
  })

  it.effect("reads no metrics when ADAPTIVE_CPU_WEIGHT is 0", () => {
    const { metrics, layer } = setup(adaptiveLayer, { ADAPTIVE_CPU_WEIGHT: "0" })
    return Effect.gen(function* () {
      const selector = yield* Selector
      const [a, b] = replicas(2)
      metrics.samples.set(a!.id, sample(100, 0))
      metrics.samples.set(b!.id, sample(0, 0))
      expect(countPicks(selector.pick, [a!, b!], 10)).toEqual([5, 5])
      expect(selector.pick([a!, b!])!.freshMetrics).toBeUndefined()
    }).pipe(Effect.provide(layer))
  })

  describe("under a fixed seed", () => {
    const run = (seed: number) =>
      simulate(replicas(5), 100, 10, 5, (index) => ({ latencyMs: 5 + 3 * index, ok: index !== 4 })).pipe(
        Effect.provide(setup(adaptiveLayer, {}, seed).layer),
      )

    it.effect("makes the same choices every time", () =>
      Effect.gen(function* () {
        const first = yield* run(7)
        expect(yield* run(7)).toEqual(first)
        expect(yield* run(8)).not.toEqual(first)
      }),
    )
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
