/** The LOG_EVERY_N_REQUESTS summary: every N requests, at most once a second of TestClock time. */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Layer, TestClock } from "effect"
import { RoutingStats } from "../../src/RoutingStats.ts"
import { makeSummaryLog } from "../../src/summary-log.ts"
import { fixedPool } from "./fakes.ts"

const logged = (everyN: number) =>
  Effect.gen(function* () {
    const stats = yield* RoutingStats
    const lines: Array<Record<string, unknown>> = []
    const summarize = makeSummaryLog(everyN, stats, yield* Effect.clock, (_, fields) => lines.push(fields))
    const requests = (count: number) => {
      for (let i = 0; i < count; i++) summarize(stats.recordRequest())
    }
    return { lines, requests }
  }).pipe(Effect.provide(RoutingStats.layer.pipe(Layer.provide(fixedPool()))))

describe("routing summary log", () => {
  it.effect("logs every N requests while they come slower than one summary a second", () =>
    Effect.gen(function* () {
      const { lines, requests } = yield* logged(100)
      for (let second = 0; second < 3; second++) {
        requests(100)
        yield* TestClock.adjust(Duration.seconds(1))
      }
      expect(lines.map((line) => line.total_requests)).toEqual([100, 200, 300])
    }),
  )

  it.effect("logs at most once a second however fast requests come", () =>
    Effect.gen(function* () {
      const { lines, requests } = yield* logged(100)
      requests(5000)
      expect(lines.map((line) => line.total_requests)).toEqual([100])
      yield* TestClock.adjust(Duration.millis(999))
      requests(1000)
      expect(lines).toHaveLength(1)
      yield* TestClock.adjust(Duration.millis(1))
      requests(100)
      expect(lines.map((line) => line.total_requests)).toEqual([100, 6100])
    }),
  )

  it.effect("logs nothing when N is 0", () =>
    Effect.gen(function* () {
      const { lines, requests } = yield* logged(0)
      requests(1000)
      expect(lines).toEqual([])
    }),
  )
})
