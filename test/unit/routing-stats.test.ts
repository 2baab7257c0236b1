/** RoutingStats: the PRD's /metrics figures, with the request rate over a sliding window of TestClock time. */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, TestClock } from "effect"
import { type Endpoint, OUTCOMES } from "../../src/Endpoint.ts"
import { ReplicaPool } from "../../src/ReplicaPool.ts"
import { ROUTING_TIME_BOUNDS_SECONDS, RoutingStats } from "../../src/RoutingStats.ts"
import { configLayer, endpoints, fakeDiscovery, fakeMetrics, fixedPool, replica } from "./fakes.ts"

/** RoutingStats over a pool of the given endpoints. */
const statsOver = (known: ReadonlyArray<Endpoint>) => RoutingStats.layer.pipe(Layer.provide(fixedPool(known)))

describe("RoutingStats", () => {
  it.effect("reports totals, decisions per replica, routing time and the fresh-metrics share", () => {
    const [a, b, c] = endpoints(3)
    return Effect.gen(function* () {
      const stats = yield* RoutingStats
      for (const [target, fresh] of [
        [a!, true],
        [a!, true],
        [b!, false],
      ] as const) {
        stats.recordRequest()
        stats.recordDecision(
          { endpoint: target, score: 1, freshMetrics: fresh, fallback: !fresh },
          0.5,
          false,
        )
      }
      stats.recordResponse(a!, 200)
      stats.recordResponse(b!, 503)
      expect(stats.snapshot()).toMatchObject({
        total_requests: 3,
        avg_routing_time_ms: 0.5,
        cache_hit_rate: 2 / 3,
        fallback_decisions: 1,
        responses: { "2xx": 1, "5xx": 1 },
      })
      // Read from the pool's endpoints: those never chosen are left out.
      expect(stats.snapshot().routing_decisions).toEqual({ [a!.id]: 2, [b!.id]: 1 })
      expect(c!.picks).toBe(0)
    }).pipe(Effect.provide(statsOver([a!, b!, c!])))
  })

  it.effect("counts each replica's attempts by outcome, and routing times in buckets", () => {
    const [a, b] = endpoints(2)
    return Effect.gen(function* () {
      const stats = yield* RoutingStats
      const decide = (target: Endpoint, timeMs: number) =>
        stats.recordDecision(
          { endpoint: target, score: 0, freshMetrics: undefined, fallback: false },
          timeMs,
          false,
        )
      decide(a!, 0.001)
      stats.recordResponse(a!, 204)
      decide(a!, 0.003)
      stats.recordNoResponse(a!, "error")
      decide(b!, 20)
      stats.recordResponse(b!, 404)
      decide(b!, 0.001)
      stats.recordNoResponse(b!, "aborted")

      const byOutcome = (endpoint: Endpoint) =>
        Object.fromEntries(OUTCOMES.map((outcome, i) => [outcome, endpoint.outcomes[i]]))
      expect([a!.picks, b!.picks]).toEqual([2, 2])
      expect(byOutcome(a!)).toEqual({ "2xx": 1, "3xx": 0, "4xx": 0, "5xx": 0, error: 1, aborted: 0 })
      expect(byOutcome(b!)).toEqual({ "2xx": 0, "3xx": 0, "4xx": 1, "5xx": 0, error: 0, aborted: 1 })

      const times = stats.routingTimes()
      expect(times.count).toBe(4)
      expect(times.sumSeconds).toBeCloseTo(0.020_005, 9)
      // 1 µs twice in the first bucket, 3 µs in the second, 20 ms above every bound.
      expect(times.bucketCounts[0]).toBe(2)
      expect(times.bucketCounts[1]).toBe(1)
      expect(times.bucketCounts[ROUTING_TIME_BOUNDS_SECONDS.length]).toBe(1)
      expect(times.bucketCounts.reduce((sum, n) => sum + n, 0)).toBe(4)
    }).pipe(Effect.provide(statsOver([a!, b!])))
  })

  it.effect("forgets what a replica was sent once discovery drops it", () => {
    const discovery = fakeDiscovery([replica(1), replica(2)])
    return Effect.gen(function* () {
      const stats = yield* RoutingStats
      const [a, b] = (yield* ReplicaPool).endpoints()
      for (const target of [a!, b!, b!]) {
        stats.recordDecision(
          { endpoint: target, score: 0, freshMetrics: undefined, fallback: false },
          0,
          false,
        )
      }
      expect(stats.snapshot().routing_decisions).toEqual({ [a!.id]: 1, [b!.id]: 2 })
      discovery.set([replica(2)])
      expect(stats.snapshot().routing_decisions).toEqual({ [b!.id]: 2 })
      discovery.set([replica(1), replica(2)])
      expect(stats.snapshot().routing_decisions).toEqual({ [b!.id]: 2 })
    }).pipe(
      Effect.provide(
        RoutingStats.layer.pipe(
          Layer.provideMerge(ReplicaPool.layer),
          Layer.provide(Layer.mergeAll(discovery.layer, fakeMetrics().layer, configLayer())),
        ),
      ),
    )
  })

  it.effect("cache_hit_rate is null while no decision read metrics", () => {
    const [a] = endpoints(1)
    return Effect.gen(function* () {
      const stats = yield* RoutingStats
      stats.recordDecision({ endpoint: a!, score: 0, freshMetrics: undefined, fallback: false }, 0, false)
      expect(stats.snapshot().cache_hit_rate).toBeNull()
    }).pipe(Effect.provide(statsOver([a!])))
  })

  it.effect("requests_per_second averages the trailing window of whole seconds", () =>
    Effect.gen(function* () {
      const stats = yield* RoutingStats
      // 50 requests a second for 20 seconds, then silence.
      for (let second = 0; second < 20; second++) {
        for (let i = 0; i < 50; i++) stats.recordRequest()
        yield* TestClock.adjust("1 second")
      }
      expect(stats.snapshot().requests_per_second).toBeCloseTo(50, 0)
      // At 25 s the window is [16 s, 25 s): 4 seconds of 50 requests.
      yield* TestClock.adjust("5 seconds")
      expect(stats.snapshot().requests_per_second).toBeCloseTo(200 / 9, 1)
      yield* TestClock.adjust("10 seconds")
      expect(stats.snapshot().requests_per_second).toBe(0)
    }).pipe(Effect.provide(statsOver([]))),
  )
})
