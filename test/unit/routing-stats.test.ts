/** RoutingStats: the PRD's /metrics figures, with the request rate over a sliding window of TestClock time. */
import { describe, expect, it } from "@effect/vitest"
import { Effect, TestClock } from "effect"
import { OUTCOMES, ROUTING_TIME_BOUNDS_SECONDS, RoutingStats } from "../../src/RoutingStats.ts"
import { replica } from "./fakes.ts"

describe("RoutingStats", () => {
  it.effect("reports totals, decisions per replica, routing time and the fresh-metrics share", () =>
    Effect.gen(function* () {
      const stats = yield* RoutingStats
      const [a, b] = [replica(1), replica(2)]
      for (const [target, fresh] of [
        [a, true],
        [a, true],
        [b, false],
      ] as const) {
        stats.recordRequest()
        stats.recordDecision({ replica: target, score: 1, freshMetrics: fresh, fallback: !fresh }, 0.5, false)
      }
      stats.recordResponse(a.id, 200)
      stats.recordResponse(b.id, 503)
      expect(stats.snapshot()).toMatchObject({
        total_requests: 3,
        routing_decisions: { [a.id]: 2, [b.id]: 1 },
        avg_routing_time_ms: 0.5,
        cache_hit_rate: 2 / 3,
        fallback_decisions: 1,
        responses: { "2xx": 1, "5xx": 1 },
      })
    }).pipe(Effect.provide(RoutingStats.layer)),
  )

  it.effect("counts each replica's attempts by outcome, and routing times in buckets", () =>
    Effect.gen(function* () {
      const stats = yield* RoutingStats
      const [a, b] = [replica(1), replica(2)]
      const decide = (target: typeof a, timeMs: number) =>
        stats.recordDecision(
          { replica: target, score: 0, freshMetrics: undefined, fallback: false },
          timeMs,
          false,
        )
      decide(a, 0.001)
      stats.recordResponse(a.id, 204)
      decide(a, 0.003)
      stats.recordNoResponse(a.id, "error")
      decide(b, 20)
      stats.recordResponse(b.id, 404)
      decide(b, 0.001)
      stats.recordNoResponse(b.id, "aborted")

      const counts = new Map(Array.from(stats.replicaCounts(), (c) => [c.id, c]))
      const byOutcome = (id: string) =>
        Object.fromEntries(OUTCOMES.map((outcome, i) => [outcome, counts.get(id)!.outcomes[i]]))
      expect(counts.get(a.id)).toMatchObject({ name: a.name, picks: 2 })
      expect(byOutcome(a.id)).toEqual({ "2xx": 1, "3xx": 0, "4xx": 0, "5xx": 0, error: 1, aborted: 0 })
      expect(byOutcome(b.id)).toEqual({ "2xx": 0, "3xx": 0, "4xx": 1, "5xx": 0, error: 0, aborted: 1 })

      const times = stats.routingTimes()
      expect(times.count).toBe(4)
      expect(times.sumSeconds).toBeCloseTo(0.020_005, 9)
      // 1 µs twice in the first bucket, 3 µs in the second, 20 ms above every bound.
      expect(times.bucketCounts[0]).toBe(2)
      expect(times.bucketCounts[1]).toBe(1)
      expect(times.bucketCounts[ROUTING_TIME_BOUNDS_SECONDS.length]).toBe(1)
      expect(times.bucketCounts.reduce((sum, n) => sum + n, 0)).toBe(4)
    }).pipe(Effect.provide(RoutingStats.layer)),
  )

  it.effect("cache_hit_rate is null while no decision read metrics", () =>
    Effect.gen(function* () {
      const stats = yield* RoutingStats
      stats.recordDecision(
        { replica: replica(1), score: 0, freshMetrics: undefined, fallback: false },
        0,
        false,
      )
      expect(stats.snapshot().cache_hit_rate).toBeNull()
    }).pipe(Effect.provide(RoutingStats.layer)),
  )

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
    }).pipe(Effect.provide(RoutingStats.layer)),
  )
})
