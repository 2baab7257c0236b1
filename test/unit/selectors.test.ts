/**
 * The Selector layers: tie-breaking, herd damping, staleness fallback, learning from exchanges,
 * weights, and the invariants every selector keeps.
 */
import { describe, expect, it } from "@effect/vitest"
import { Clock, Effect, FastCheck as fc, Layer, Random, TestClock } from "effect"
import { selectorLayers } from "../../layers/selector/registry.ts"
import type { LbConfig } from "../../src/Config.ts"
import { parseLoadReport } from "../../src/domain/LoadReport.ts"
import type { Endpoint, PendingExchange } from "../../src/Endpoint.ts"
import { Selector, type SelectorShape } from "../../src/Selector.ts"
import { choiceOf, configLayer, endpoint, endpoints, sample } from "./fakes.ts"

/** A selector with the configuration `env` and a fixed random seed. */
const setup = (
  selector: Layer.Layer<Selector, never, LbConfig>,
  env: Record<string, string> = {},
  seed = 1,
) => selector.pipe(Layer.provide(configLayer(env)), Layer.provide(Layer.setRandom(Random.make(seed))))

/** How many of `picks` picks went to each candidate, in the candidates' order. */
const countPicks = (selector: SelectorShape, candidates: ReadonlyArray<Endpoint>, picks: number) => {
  const choice = choiceOf(candidates)
  const counts = new Map<Endpoint, number>(candidates.map((candidate) => [candidate, 0]))
  for (let i = 0; i < picks; i++) {
    const chosen = selector.pick(choice)!.endpoint
    counts.set(chosen, counts.get(chosen)! + 1)
  }
  return [...counts.values()]
}

const weightedActive = (candidate: Endpoint) => candidate.active / candidate.effectiveWeight

describe("round-robin", () => {
  it.effect.prop(
    "shares differ by at most one",
    [fc.integer({ min: 1, max: 12 }), fc.integer({ min: 0, max: 500 })],
    ([count, picks]) =>
      Effect.gen(function* () {
        const selector = yield* Selector
        const shares = countPicks(selector, endpoints(count), picks)
        expect(Math.max(...shares) - Math.min(...shares)).toBeLessThanOrEqual(1)
      }).pipe(Effect.provide(setup(selectorLayers["round-robin"]))),
  )

  it.effect.prop(
    "with uneven weights, every round of picks gives each endpoint exactly its weight",
    [
      fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 8 }),
      fc.integer({ min: 1, max: 5 }),
    ],
    ([weights, rounds]) =>
      Effect.gen(function* () {
        const selector = yield* Selector
        const candidates = endpoints(weights.length, weights)
        const total = weights.reduce((sum, weight) => sum + weight, 0)
        expect(countPicks(selector, candidates, rounds * total)).toEqual(
          weights.map((weight) => rounds * weight),
        )
      }).pipe(Effect.provide(setup(selectorLayers["round-robin"]))),
  )

  it.effect("spreads a heavy endpoint's picks among the others' instead of sending them in a row", () =>
    Effect.gen(function* () {
      const selector = yield* Selector
      const candidates = endpoints(3, [5, 1, 1])
      const choice = choiceOf(candidates)
      const sequence = Array.from({ length: 7 }, () => candidates.indexOf(selector.pick(choice)!.endpoint))
      expect(sequence).toEqual([0, 0, 1, 0, 2, 0, 0])
    }).pipe(Effect.provide(setup(selectorLayers["round-robin"]))),
  )
})

describe("lease", () => {
  it.effect("takes turns among equal lease counts instead of always choosing the first", () =>
    Effect.gen(function* () {
      const selector = yield* Selector
      // Every request finishes before the next: every count is 0 at each pick.
      expect(countPicks(selector, endpoints(3), 300)).toEqual([100, 100, 100])
    }).pipe(Effect.provide(setup(selectorLayers.lease))),
  )

  it.effect.prop(
    "always picks a replica with the fewest active leases",
    [fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 1, maxLength: 8 })],
    ([leaseCounts]) =>
      Effect.gen(function* () {
        const selector = yield* Selector
        const candidates = endpoints(leaseCounts.length)
        leaseCounts.forEach((count, i) => {
          candidates[i]!.active = count
        })
        const chosen = selector.pick(choiceOf(candidates))!
        expect(chosen.endpoint.active).toBe(Math.min(...leaseCounts))
        expect(chosen.score).toBe(Math.min(...leaseCounts))
      }).pipe(Effect.provide(setup(selectorLayers.lease))),
  )

  it.effect("prefers fewer active leases per unit of weight over fewer active leases", () =>
    Effect.gen(function* () {
      const selector = yield* Selector
      // 3 leases at weight 2 are 1.5 per unit of weight; 2 at weight 1 are 2.
      const [heavy, light] = endpoints(2, [2, 1])
      heavy!.active = 3
      light!.active = 2
      expect(selector.pick(choiceOf([heavy!, light!]))).toMatchObject({ endpoint: heavy, score: 3 })
      light!.active = 1
      expect(selector.pick(choiceOf([heavy!, light!]))!.endpoint).toBe(light)
    }).pipe(Effect.provide(setup(selectorLayers.lease))),
  )

  it.effect.prop(
    "with uneven weights, never passes over one more than a request and a half per its weight less loaded",
    [
      fc.array(fc.tuple(fc.integer({ min: 0, max: 5 }), fc.constantFrom(0.1, 0.25, 0.5, 1, 2, 3)), {
        minLength: 1,
        maxLength: 8,
      }),
    ],
    ([states]) =>
      Effect.gen(function* () {
        const selector = yield* Selector
        const candidates = states.map(([active, weight], i) => {
          const made = endpoint(i + 1, weight)
          made.active = active
          return made
        })
        for (let i = 0; i < 5; i++) {
          const chosen = selector.pick(choiceOf(candidates))!.endpoint
          for (const other of candidates) {
            const gap = weightedActive(chosen) - weightedActive(other)
            const margin = chosen.effectiveWeight === other.effectiveWeight ? 0 : 1.5
            expect(gap).toBeLessThanOrEqual(margin / Math.min(chosen.effectiveWeight, other.effectiveWeight))
          }
        }
      }).pipe(Effect.provide(setup(selectorLayers.lease))),
  )

  it.effect("breaks ties by weighted rotation: an endpoint of twice the weight wins twice as many", () =>
    Effect.gen(function* () {
      const selector = yield* Selector
      expect(countPicks(selector, endpoints(2, [2, 1]), 300)).toEqual([200, 100])
    }).pipe(Effect.provide(setup(selectorLayers.lease))),
  )
})

describe("metrics", () => {
  it.effect("prefers the least loaded replica when metrics are fresh", () =>
    Effect.gen(function* () {
      const selector = yield* Selector
      const [a, b, c] = endpoints(3)
      a!.metrics = sample(80, 0)
      b!.metrics = sample(20, 0)
      c!.metrics = sample(60, 0)
      const decision = selector.pick(choiceOf([a!, b!, c!]))!
      expect(decision.endpoint).toBe(b)
      expect(decision).toMatchObject({ score: 10, freshMetrics: true, fallback: false })
    }).pipe(Effect.provide(setup(selectorLayers.metrics))),
  )

  it.effect("falls back to round-robin, counted, when a replica's metrics are missing", () =>
    Effect.gen(function* () {
      const selector = yield* Selector
      const candidates = endpoints(3)
      candidates[0]!.metrics = sample(0, 0)
      const decisions = [0, 1, 2].map(() => selector.pick(choiceOf(candidates))!)
      expect(decisions.map((d) => d.endpoint)).toEqual(candidates)
      expect(decisions.every((d) => d.fallback && d.freshMetrics === false)).toBe(true)
    }).pipe(Effect.provide(setup(selectorLayers.metrics))),
  )

  it.effect("falls back once metrics are older than METRICS_MAX_AGE, and not before", () =>
    Effect.gen(function* () {
      const selector = yield* Selector
      const candidates = endpoints(2)
      candidates[0]!.metrics = sample(90, 0)
      candidates[1]!.metrics = sample(10, 0)
      yield* TestClock.adjust("3 seconds")
      const decision = selector.pick(choiceOf(candidates))!
      expect(decision.endpoint).toBe(candidates[1])
      expect(decision.fallback).toBe(false)
      yield* TestClock.adjust("1 millis")
      expect(selector.pick(choiceOf(candidates))!.fallback).toBe(true)
    }).pipe(Effect.provide(setup(selectorLayers.metrics, { METRICS_MAX_AGE: "3" }))),
  )

  it.effect("with FALLBACK_ENABLED=false, routes only to replicas with fresh metrics, or refuses", () =>
    Effect.gen(function* () {
      const selector = yield* Selector
      const [a, b] = endpoints(2)
      b!.metrics = sample(95, 0)
      expect(countPicks(selector, [a!, b!], 10)).toEqual([0, 10])
      b!.metrics = undefined
      expect(selector.pick(choiceOf([a!, b!]))).toBeUndefined()
    }).pipe(Effect.provide(setup(selectorLayers.metrics, { FALLBACK_ENABLED: "false" }))),
  )

  it.effect.prop(
    "three equal replicas with one-second-old metrics: no replica gets more than half of 300 picks",
    [fc.tuple(fc.double({ min: 0, max: 100 }), fc.double({ min: 0, max: 5 }), fc.double({ min: 0, max: 5 }))],
    ([[base, noiseB, noiseC]]) =>
      Effect.gen(function* () {
        const selector = yield* Selector
        yield* TestClock.adjust("1 second")
        const candidates = endpoints(3)
        // Same load give or take sampling noise, all sampled one second ago.
        candidates[0]!.metrics = sample(base, 0)
        candidates[1]!.metrics = sample(base + noiseB, 0)
        candidates[2]!.metrics = sample(base + noiseC, 0)
        const shares = countPicks(selector, candidates, 300)
        expect(Math.max(...shares)).toBeLessThanOrEqual(150)
      }).pipe(Effect.provide(setup(selectorLayers.metrics))),
  )
})

describe("metrics, sample after sample", () => {
  /**
   * A closed loop: every second the replicas report the CPU their share of 300 requests cost them;
   * replica 3 has a quarter of the others' CPU and the load is 70% of the total capacity.
   */
  const simulate = (intervals: number) =>
    Effect.gen(function* () {
      const selector = yield* Selector
      const candidates = endpoints(3)
      const capacity = [1, 1, 0.25]
      const perInterval = 300
      const fastCapacity = perInterval / (2.25 * 0.7)
      const history: Array<Array<number>> = []
      let picks = [100, 100, 100]
      for (let interval = 0; interval < intervals; interval++) {
        yield* TestClock.adjust("1 second")
        const now = (interval + 1) * 1000
        candidates.forEach((candidate, i) => {
          const cpu = Math.min(100, (100 * picks[i]!) / (capacity[i]! * fastCapacity))
          candidate.metrics = sample(cpu, now)
        })
        picks = countPicks(selector, candidates, perInterval)
        history.push(picks)
      }
      return history
    }).pipe(Effect.provide(setup(selectorLayers.metrics)))

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
  it.effect("adds LEASE_COUNT_WEIGHT per active lease to the load score", () =>
    Effect.gen(function* () {
      const selector = yield* Selector
      const [a, b] = endpoints(2)
      a!.metrics = sample(20, 0) // score 10
      b!.metrics = sample(50, 0) // score 25
      a!.active = 2 // 10 + 2·10 = 30 > 25
      const decision = selector.pick(choiceOf([a!, b!]))!
      expect(decision.endpoint).toBe(b)
      expect(decision).toMatchObject({ score: 25, freshMetrics: true })
    }).pipe(Effect.provide(setup(selectorLayers.hybrid))),
  )

  it.effect("falls back to fewest leases, counted, when metrics are missing", () =>
    Effect.gen(function* () {
      const selector = yield* Selector
      const [a, b] = endpoints(2)
      a!.active = 1
      const decision = selector.pick(choiceOf([a!, b!]))!
      expect(decision.endpoint).toBe(b)
      expect(decision).toMatchObject({ fallback: true, freshMetrics: false })
    }).pipe(Effect.provide(setup(selectorLayers.hybrid))),
  )

  it.effect("falls back to fewest leases per unit of weight when weights differ", () =>
    Effect.gen(function* () {
      const selector = yield* Selector
      const [heavy, light] = endpoints(2, [3, 1])
      heavy!.active = 2
      light!.active = 1
      expect(selector.pick(choiceOf([heavy!, light!]))).toMatchObject({ endpoint: heavy, fallback: true })
    }).pipe(Effect.provide(setup(selectorLayers.hybrid))),
  )
})

describe("metrics and hybrid, with weights", () => {
  for (const algorithm of ["metrics", "hybrid"] as const) {
    it.effect(
      `${algorithm}: at equal load scores, an endpoint of twice the weight takes twice the picks`,
      () =>
        Effect.gen(function* () {
          const selector = yield* Selector
          const [heavy, light] = endpoints(2, [2, 1])
          heavy!.metrics = sample(40, 0)
          light!.metrics = sample(40, 0)
          const [heavyPicks, lightPicks] = countPicks(selector, [heavy!, light!], 300)
          expect(Math.abs(heavyPicks! - 2 * lightPicks!)).toBeLessThanOrEqual(3)
          // Equal weights, the same scores: an even split.
          const [a, b] = endpoints(2)
          a!.metrics = sample(40, 0)
          b!.metrics = sample(40, 0)
          const [aPicks, bPicks] = countPicks(selector, [a!, b!], 300)
          expect(Math.abs(aPicks! - bPicks!)).toBeLessThanOrEqual(2)
        }).pipe(Effect.provide(setup(selectorLayers[algorithm]))),
    )
  }
})

describe("adaptive", () => {
  interface Outcome {
    readonly latencyMs: number
    readonly ok: boolean
  }
  interface InFlight extends Outcome {
    readonly endpoint: Endpoint
    readonly endsAt: number
    /** What the proxy's attempt keeps on the endpoint until the answer. */
    readonly pending: PendingExchange
  }

  /**
   * Open-loop traffic: every `tickMs`, `perTick` requests arrive, each in flight on its endpoint
   * (`active`, `pending`) until its exchange ends `latencyMs` later and is reported. `outcome` says how candidate
   * `index` answers at `tick`. Returns the candidate index of every pick, once every exchange has
   * ended. (Each TestClock step yields to the event loop, so requests arrive in small bursts to keep
   * the steps few.)
   */
  const simulate = (
    candidates: ReadonlyArray<Endpoint>,
    ticks: number,
    tickMs: number,
    perTick: number,
    outcome: (index: number, tick: number) => Outcome,
  ) =>
    Effect.gen(function* () {
      const selector = yield* Selector
      const choice = choiceOf(candidates)
      const inFlight: Array<InFlight> = []
      const picked: Array<number> = []
      const endDue = (now: number) => {
        for (let k = inFlight.length - 1; k >= 0; k--) {
          const exchange = inFlight[k]!
          if (exchange.endsAt > now) continue
          inFlight.splice(k, 1)
          exchange.endpoint.active--
          exchange.endpoint.pending.delete(exchange.pending)
          selector.observe(exchange.endpoint, exchange.latencyMs, exchange.ok)
        }
      }
      for (let tick = 0; tick < ticks; tick++) {
        yield* TestClock.adjust(`${tickMs} millis`)
        const now = yield* Clock.currentTimeMillis
        endDue(now)
        for (let n = 0; n < perTick; n++) {
          const chosen = selector.pick(choice)!.endpoint
          const index = candidates.indexOf(chosen)
          picked.push(index)
          const answer = outcome(index, tick)
          chosen.active++
          const pending = { sentAt: now }
          chosen.pending.add(pending)
          inFlight.push({ ...answer, endpoint: chosen, endsAt: now + answer.latencyMs, pending })
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

  const adaptive = (env: Record<string, string> = {}, seed = 1) => setup(selectorLayers.adaptive, env, seed)

  it.effect("takes turns among replicas nothing tells apart", () =>
    Effect.gen(function* () {
      const selector = yield* Selector
      expect(countPicks(selector, endpoints(3), 300)).toEqual([100, 100, 100])
    }).pipe(Effect.provide(adaptive())),
  )

  it.effect.prop(
    "with nothing observed and nothing in flight, shares differ by at most one",
    [fc.integer({ min: 1, max: 12 }), fc.integer({ min: 0, max: 500 })],
    ([count, picks]) =>
      Effect.gen(function* () {
        const selector = yield* Selector
        const shares = countPicks(selector, endpoints(count), picks)
        expect(Math.max(...shares) - Math.min(...shares)).toBeLessThanOrEqual(1)
      }).pipe(Effect.provide(adaptive())),
  )

  it.effect.prop(
    "never picks the replica with strictly the most requests in flight, whatever the latencies",
    [
      fc.array(fc.tuple(fc.integer({ min: 0, max: 5 }), fc.integer({ min: 1, max: 500 })), {
        minLength: 2,
        maxLength: 8,
      }),
      fc.nat(),
      fc.integer({ min: 1, max: 3 }),
      fc.integer(),
    ],
    ([replicaStates, which, margin, seed]) =>
      Effect.gen(function* () {
        const selector = yield* Selector
        const candidates = endpoints(replicaStates.length)
        // One replica, anywhere among them, has strictly more in flight than every other (which may
        // tie among themselves): the property always has a busiest replica to avoid.
        const busiest = which % replicaStates.length
        const counts = replicaStates.map(([active]) => active)
        counts[busiest] = Math.max(...counts.filter((_, i) => i !== busiest)) + margin
        replicaStates.forEach(([, latencyMs], i) => {
          selector.observe(candidates[i]!, latencyMs, true)
          candidates[i]!.active = counts[i]!
        })
        for (let i = 0; i < 20; i++) {
          const decision = selector.pick(choiceOf(candidates))!
          expect(decision.endpoint).not.toBe(candidates[busiest])
          expect(decision.fallback).toBe(false)
        }
      }).pipe(Effect.provide(adaptive({}, seed))),
  )

  it.effect("gives a replica that answers four times slower a clearly smaller share", () =>
    Effect.gen(function* () {
      const candidates = endpoints(3)
      // One at a time, then about five requests in flight.
      const sequential = sharesOf(yield* simulate(candidates, 300, 50, 1, answering(10, 10, 40)), 3)
      expect(sequential[2]).toBeLessThan(0.05)
      const busy = sharesOf(yield* simulate(candidates, 300, 10, 4, answering(10, 10, 40)), 3)
      expect(busy[2]).toBeLessThan(0.5 * Math.min(busy[0]!, busy[1]!))
    }).pipe(Effect.provide(adaptive())),
  )

  it.effect("gives a replica that fails fast a small share, even when the others are busier", () =>
    Effect.gen(function* () {
      const candidates = endpoints(3)
      const failingFast = (index: number): Outcome =>
        index === 2 ? { latencyMs: 1, ok: false } : { latencyMs: 10, ok: true }
      const sequential = sharesOf(yield* simulate(candidates, 300, 50, 1, failingFast), 3)
      expect(sequential[2]).toBeLessThan(0.05)
      // A few requests in flight on the healthy replicas, none on the failing one.
      const busy = sharesOf(yield* simulate(candidates, 300, 10, 4, failingFast), 3)
      expect(busy[2]).toBeLessThan(0.05)
    }).pipe(Effect.provide(adaptive())),
  )

  it.effect("counts a quick failure as a slow exchange: failing one in five costs a replica its share", () =>
    Effect.gen(function* () {
      let answered = 0
      const flaky = (index: number): Outcome =>
        index === 2 && ++answered % 5 === 0 ? { latencyMs: 1, ok: false } : { latencyMs: 10, ok: true }
      const shares = sharesOf(yield* simulate(endpoints(3), 300, 50, 1, flaky), 3)
      expect(shares[2]).toBeLessThan(0.1)
    }).pipe(Effect.provide(adaptive())),
  )

  it.effect("avoids a hot replica, however fast it answers", () =>
    Effect.gen(function* () {
      const selector = yield* Selector
      const [a, b, c] = endpoints(3)
      for (let n = 0; n < 20; n++) {
        selector.observe(a!, 1, true)
        selector.observe(b!, 50, true)
        selector.observe(c!, 50, true)
      }
      // Cold, a wins every comparison it is in: two picks in three.
      expect(countPicks(selector, [a!, b!, c!], 30)[0]).toBeGreaterThan(15)
      a!.active = 3
      expect(countPicks(selector, [a!, b!, c!], 30)[0]).toBe(0)
    }).pipe(Effect.provide(adaptive())),
  )

  it.effect("lets a replica that was slow win its share back once it has recovered", () =>
    Effect.gen(function* () {
      // A request every 200 ms: replica 3 takes 100 ms for the first 20 s, then 10 ms like the others.
      const recovering = (index: number, tick: number): Outcome => ({
        latencyMs: index === 2 && tick < 100 ? 100 : 10,
        ok: true,
      })
      const picked = yield* simulate(endpoints(3), 300, 200, 1, recovering)
      expect(sharesOf(picked.slice(0, 100), 3)[2]).toBeLessThan(0.05)
      // Within a few ADAPTIVE_DECAY windows (5 s) of recovering, it has its third again.
      expect(sharesOf(picked.slice(200), 3)[2]).toBeGreaterThan(0.28)
    }).pipe(Effect.provide(adaptive())),
  )

  it.effect("tries a new replica at the typical latency without flooding it", () =>
    Effect.gen(function* () {
      const selector = yield* Selector
      const known = endpoints(3)
      for (let n = 0; n < 20; n++) for (const candidate of known) selector.observe(candidate, 10, true)
      const withNew = [...known, endpoint(4)]
      const shares = countPicks(selector, withNew, 400)
      expect(shares[3]).toBeGreaterThan(50)
      expect(shares[3]).toBeLessThan(150)
    }).pipe(Effect.provide(adaptive())),
  )

  it.effect("compares every one of a few candidates: an idle fast replica beats an idle slow one", () =>
    Effect.gen(function* () {
      const selector = yield* Selector
      const [busyFast, idleFast, idleSlow] = endpoints(3)
      for (let n = 0; n < 20; n++) {
        selector.observe(busyFast!, 10, true)
        selector.observe(idleFast!, 10, true)
        selector.observe(idleSlow!, 40, true)
      }
      busyFast!.active = 2
      // Two compared at a time, the pair (busy fast, idle slow) would go to the slow one.
      expect(countPicks(selector, [busyFast!, idleFast!, idleSlow!], 30)).toEqual([0, 30, 0])
    }).pipe(Effect.provide(adaptive())),
  )

  /** Twenty exchanges of `latencyMs` with each candidate: their latency estimates are settled. */
  const settle = (selector: SelectorShape, candidates: ReadonlyArray<Endpoint>, latencyMs: number) => {
    for (let n = 0; n < 20; n++)
      for (const candidate of candidates) selector.observe(candidate, latencyMs, true)
  }

  /** The load report a replica's answer carried, as the proxy keeps it on the endpoint. */
  const reportOn = (target: Endpoint, header: string, receivedAt: number) => {
    target.loadReport = { report: parseLoadReport(header)!, receivedAt, activeAtReceipt: target.active }
  }

  it.effect("passes over a replica whose oldest request has waited longer than the others answer", () =>
    Effect.gen(function* () {
      const selector = yield* Selector
      const [stuck, free] = endpoints(2)
      settle(selector, [stuck!, free!], 10)
      // One request in flight on each: stuck's was sent 100 ms ago, free's just now.
      const now = yield* Clock.currentTimeMillis
      stuck!.active = 1
      stuck!.pending.add({ sentAt: now - 100 })
      free!.active = 1
      free!.pending.add({ sentAt: now })
      expect(selector.pick(choiceOf([stuck!, free!]))!.endpoint).toBe(free)
      expect(selector.pick(choiceOf([stuck!, free!]))!.endpoint).toBe(free)
      // A wait within the latency the replica is known for changes nothing: they take turns.
      stuck!.pending.clear()
      stuck!.pending.add({ sentAt: now - 5 })
      expect(countPicks(selector, [stuck!, free!], 4)).toEqual([2, 2])
    }).pipe(Effect.provide(adaptive())),
  )

  it.effect("counts the requests a replica reports in flight, which other balancers sent, while fresh", () =>
    Effect.gen(function* () {
      const selector = yield* Selector
      const [a, b] = endpoints(2)
      settle(selector, [a!, b!], 10)
      // Nothing in flight from here, but a says it holds four requests.
      reportOn(a!, "TEXT named_metrics.rif=4", yield* Clock.currentTimeMillis)
      expect(countPicks(selector, [a!, b!], 10)).toEqual([0, 10])
      // What this balancer sends after the report adds to it: b, holding three of ours, is still freer.
      b!.active = 3
      expect(selector.pick(choiceOf([a!, b!]))!.endpoint).toBe(b)
      b!.active = 0
      // A second later the report no longer says what the queue is: the replicas take turns again.
      yield* TestClock.adjust("1001 millis")
      expect(countPicks(selector, [a!, b!], 10)).toEqual([5, 5])
    }).pipe(Effect.provide(adaptive())),
  )

  it.effect("prefers a replica's own fresh CPU report to the agents' sample", () =>
    Effect.gen(function* () {
      const selector = yield* Selector
      const [a, b] = endpoints(2)
      settle(selector, [a!, b!], 10)
      // The agents saw both idle; a reports its allowance used up.
      a!.metrics = sample(0, 0)
      b!.metrics = sample(0, 0)
      reportOn(a!, "TEXT cpu_utilization=1", yield* Clock.currentTimeMillis)
      const decisions = [0, 1, 2, 3].map(() => selector.pick(choiceOf([a!, b!]))!)
      expect(decisions.map((decision) => decision.endpoint)).toEqual([b, b, b, b])
      expect(decisions[0]).toMatchObject({ freshMetrics: true, fallback: false })
    }).pipe(Effect.provide(adaptive())),
  )

  it.effect("scales latency mildly by CPU only when both replicas have fresh metrics", () =>
    Effect.gen(function* () {
      const selector = yield* Selector
      const [a, b] = endpoints(2)
      settle(selector, [a!, b!], 10)
      // Equal latency, and a alone at full CPU: a's estimate is half as large again.
      a!.metrics = sample(100, 0)
      b!.metrics = sample(0, 0)
      const fresh = [0, 1, 2, 3].map(() => selector.pick(choiceOf([a!, b!]))!)
      expect(fresh.map((decision) => decision.endpoint)).toEqual([b, b, b, b])
      expect(fresh[0]).toMatchObject({ score: 10, freshMetrics: true, fallback: false })
      // Stale metrics are left out, and nothing falls back: the replicas take turns again.
      yield* TestClock.adjust("4 seconds")
      const stale = [0, 1, 2, 3].map(() => selector.pick(choiceOf([a!, b!]))!)
      expect(stale.map((decision) => decision.endpoint)).toEqual([a, b, a, b])
      expect(stale.every((decision) => decision.freshMetrics === false && !decision.fallback)).toBe(true)
    }).pipe(Effect.provide(adaptive({ METRICS_MAX_AGE: "3" }))),
  )

  it.effect("reads no metrics when ADAPTIVE_CPU_WEIGHT is 0", () =>
    Effect.gen(function* () {
      const selector = yield* Selector
      const [a, b] = endpoints(2)
      a!.metrics = sample(100, 0)
      b!.metrics = sample(0, 0)
      expect(countPicks(selector, [a!, b!], 10)).toEqual([5, 5])
      expect(selector.pick(choiceOf([a!, b!]))!.freshMetrics).toBeUndefined()
    }).pipe(Effect.provide(adaptive({ ADAPTIVE_CPU_WEIGHT: "0" }))),
  )

  it.effect("with nothing to tell them apart, shares follow the weights", () =>
    Effect.gen(function* () {
      // Equal answers, about five requests in flight: the only difference is the weight.
      const shares = sharesOf(yield* simulate(endpoints(3, [2, 1, 1]), 300, 10, 4, answering(10, 10, 10)), 3)
      expect(shares[0]).toBeGreaterThan(0.45)
      expect(Math.abs(shares[1]! - shares[2]!)).toBeLessThan(0.05)
    }).pipe(Effect.provide(adaptive())),
  )

  it.effect("gives an endpoint of a tenth of the weight a clearly smaller share at equal load", () =>
    Effect.gen(function* () {
      const candidates = endpoints(3, [1, 1, 0.1])
      // Every replica answers alike: one request at a time, then about five in flight.
      const sequential = sharesOf(yield* simulate(candidates, 300, 50, 1, answering(10, 10, 10)), 3)
      expect(sequential[2]).toBeLessThan(0.25 * Math.min(sequential[0]!, sequential[1]!))
      const busy = sharesOf(yield* simulate(candidates, 300, 10, 4, answering(10, 10, 10)), 3)
      expect(busy[2]).toBeLessThan(0.25 * Math.min(busy[0]!, busy[1]!))
      // The same traffic at equal weights shares evenly: the weight made the difference.
      const even = sharesOf(yield* simulate(endpoints(3), 300, 10, 4, answering(10, 10, 10)), 3)
      expect(even[2]).toBeGreaterThan(0.28)
    }).pipe(Effect.provide(adaptive())),
  )

  describe("under a fixed seed", () => {
    // Past eight candidates two are compared, one drawn at random: the seed decides which.
    const run = (seed: number) =>
      simulate(endpoints(12), 100, 10, 5, (index) => ({ latencyMs: 5 + 3 * index, ok: index !== 4 })).pipe(
        Effect.provide(adaptive({}, seed)),
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
        fc.array(fc.constantFrom(0.1, 0.5, 1, 2), { maxLength: 10 }),
      ],
      ([count, loads, weights]) =>
        Effect.gen(function* () {
          const selector = yield* Selector
          const candidates = endpoints(count, weights)
          loads.forEach((load, i) => {
            if (load !== undefined && i < count) candidates[i]!.metrics = sample(load, 0)
          })
          for (let i = 0; i < 20; i++) {
            expect(candidates).toContain(selector.pick(choiceOf(candidates))!.endpoint)
          }
          expect(selector.algorithm).toBe(algorithm)
        }).pipe(Effect.provide(setup(selectorLayer))),
    )
  }
})
