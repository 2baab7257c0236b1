/**
 * GCRA arithmetic: a fresh key's burst, what is left, when to retry and when the bucket is full again,
 * one request per interval afterwards; no window ever admits more than the burst and the rate allow;
 * and the in-memory buckets forgetting the keys that are full again.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, FastCheck as fc, TestClock } from "effect"
import { makeMemoryBuckets, sweepForever } from "../../layers/rate-limit-store/memory.ts"
import { gcra } from "../../src/limits/gcra.ts"

/** The decisions for requests at `times` on one key, the TAT carried from each to the next. */
const decide = (times: ReadonlyArray<number>, intervalMs: number, burst: number) => {
  let tat: number | undefined
  return times.map((now) => {
    const decision = gcra(tat, now, intervalMs, burst)
    tat = decision.tat
    return decision
  })
}

describe("gcra", () => {
  it("admits a fresh key's burst at once, counting down what is left, then refuses", () => {
    const decisions = decide([0, 0, 0, 0, 0], 100, 4)
    expect(decisions.map((d) => d.allowed)).toEqual([true, true, true, true, false])
    expect(decisions.map((d) => d.remaining)).toEqual([3, 2, 1, 0, 0])
    // Full again once every admitted request's interval has passed.
    expect(decisions.map((d) => d.resetMs)).toEqual([100, 200, 300, 400, 400])
    expect(decisions.map((d) => d.retryAfterMs)).toEqual([0, 0, 0, 0, 100])
  })

  it("leaves a refused request's TAT as it was", () => {
    const full = gcra(400, 0, 100, 4)
    expect(full).toEqual({ allowed: false, remaining: 0, resetMs: 400, retryAfterMs: 100, tat: 400 })
  })

  it("says exactly when the next request would be admitted, and admits it then, not a millisecond before", () => {
    // Burst spent at 0: TAT 400, the next slot at 100.
    const later = gcra(400, 40, 100, 4)
    expect(later).toMatchObject({ allowed: false, retryAfterMs: 60, resetMs: 360 })
    expect(gcra(400, 99, 100, 4).allowed).toBe(false)
    expect(gcra(400, 100, 100, 4)).toEqual({
      allowed: true,
      remaining: 0,
      resetMs: 400,
      retryAfterMs: 0,
      tat: 500,
    })
  })

  it("admits one request per interval once the burst is spent", () => {
    const times = [0, 0, 0, 50, 100, 150, 199, 200, 250, 300]
    const decisions = decide(times, 100, 3)
    expect(decisions.map((d) => d.allowed)).toEqual([
      true,
      true,
      true,
      false,
      true,
      false,
      false,
      true,
      false,
      true,
    ])
  })

  it("treats a TAT in the past as a full bucket", () => {
    expect(gcra(1_000, 5_000, 100, 4)).toEqual(gcra(undefined, 5_000, 100, 4))
    expect(gcra(5_000, 5_000, 100, 4)).toMatchObject({ allowed: true, remaining: 3, tat: 5_100 })
  })

  it("with a burst of 1, refuses everything within the interval", () => {
    const decisions = decide([0, 1, 999, 1_000, 1_000], 1_000, 1)
    expect(decisions.map((d) => d.allowed)).toEqual([true, false, false, true, false])
    expect(decisions.map((d) => d.remaining)).toEqual([0, 0, 0, 0, 0])
    expect(decisions[1]!.retryAfterMs).toBe(999)
    expect(decisions[2]!.retryAfterMs).toBe(1)
  })

  it("lands exactly on the slots of an interval that is not a whole number of milliseconds", () => {
    const interval = 1_000 / 3
    // 3/s with a burst of 1: a request on each slot k × 1000/3 is admitted, however the TAT was summed.
    const slots = Array.from({ length: 300 }, (_, k) => (k * 1_000) / 3)
    expect(decide(slots, interval, 1).every((d) => d.allowed)).toBe(true)
    // And the whole second's worth at once, with a burst of 3, then the next slot exactly.
    const burst = decide([0, 0, 0, 0, interval, 2 * interval, 1_000], interval, 3)
    expect(burst.map((d) => d.allowed)).toEqual([true, true, true, false, true, true, true])
    expect(burst.map((d) => d.remaining)).toEqual([2, 1, 0, 0, 0, 0, 0])
    expect(burst[3]!.retryAfterMs).toBeCloseTo(interval, 9)
    // Just before a slot is still too early.
    expect(decide([0, interval - 0.001], interval, 1).map((d) => d.allowed)).toEqual([true, false])
  })

  it("counts what is left without rounding it away on a fractional interval", () => {
    const interval = 1_000 / 3
    const decisions = decide([0, 0, 0, 0, 0, 0], interval, 6)
    expect(decisions.map((d) => d.remaining)).toEqual([5, 4, 3, 2, 1, 0])
  })

  /** Arrival times from gaps, the interval and the burst of one random case. */
  const arrivals = (gaps: ReadonlyArray<number>) => {
    const times: Array<number> = []
    let now = 0
    for (const gap of gaps) {
      now += gap
      times.push(now)
    }
    return times
  }

  const intervals = fc.oneof(
    fc.integer({ min: 1, max: 1_000 }),
    fc.integer({ min: 1, max: 5_000 }).map((count) => 60_000 / count),
    fc.integer({ min: 1, max: 100 }).map((count) => 1_000 / count),
  )

  it.prop(
    "no window [t, t + w] ever admits more than burst + w / interval",
    [
      intervals,
      fc.integer({ min: 1, max: 20 }),
      // Gaps in hundredths of an interval: clustered, spread and idle stretches alike.
      fc.array(fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 300 })), { minLength: 1, maxLength: 300 }),
    ],
    ([interval, burst, hundredths]) => {
      const times = arrivals(hundredths.map((h) => (h * interval) / 100))
      const decisions = decide(times, interval, burst)
      const admitted = times.filter((_, i) => decisions[i]!.allowed)
      // Every window's count is largest when it starts and ends on admitted requests.
      for (let first = 0; first < admitted.length; first++) {
        for (let last = first; last < admitted.length; last++) {
          const w = admitted[last]! - admitted[first]!
          expect(last - first + 1).toBeLessThanOrEqual(burst + w / interval + 1e-6)
        }
      }
    },
    { fastCheck: { seed: 20261207, numRuns: 300 } },
  )

  it.prop(
    "over a long run above the rate, admits the burst and one per interval, give or take one",
    [
      intervals,
      // A burst of 2 or more: with 1, each admission may land up to a gap after its slot, and a
      // client sending at twice the rate loses that time at every request (GCRA does not bank it).
      fc.integer({ min: 2, max: 20 }),
      // Gaps of at most one interval (twice the rate on average) over thousands of requests.
      fc.array(fc.integer({ min: 0, max: 100 }), { minLength: 2_000, maxLength: 4_000 }),
    ],
    ([interval, burst, hundredths]) => {
      const times = arrivals(hundredths.map((h) => (h * interval) / 100))
      const admitted = decide(times, interval, burst).filter((d) => d.allowed).length
      const expected = burst + Math.floor((times.at(-1)! - times[0]!) / interval)
      expect(Math.abs(admitted - expected)).toBeLessThanOrEqual(1)
    },
    { fastCheck: { seed: 20261208, numRuns: 100 } },
  )
})

describe("memory buckets", () => {
  /** Buckets on the clock service, as the memory layer makes them: TestClock here. */
  const onTestClock = Effect.map(Effect.clock, (clock) =>
    makeMemoryBuckets(() => clock.unsafeCurrentTimeMillis()),
  )

  it.effect("keeps one TAT per key, and only an admitted request moves it", () =>
    Effect.gen(function* () {
      const buckets = yield* onTestClock
      expect(buckets.take("a", 100, 2)).toMatchObject({ allowed: true, remaining: 1 })
      expect(buckets.take("a", 100, 2)).toMatchObject({ allowed: true, remaining: 0 })
      expect(buckets.take("a", 100, 2)).toMatchObject({ allowed: false, retryAfterMs: 100, resetMs: 200 })
      expect(buckets.take("a", 100, 2)).toMatchObject({ allowed: false, retryAfterMs: 100, resetMs: 200 })
      // Another key has its own budget.
      expect(buckets.take("b", 100, 2)).toMatchObject({ allowed: true, remaining: 1 })
      expect(buckets.size()).toBe(2)
    }),
  )

  it.effect("reads the clock at each decision", () =>
    Effect.gen(function* () {
      const buckets = yield* onTestClock
      buckets.take("a", 100, 1)
      yield* TestClock.adjust(99)
      expect(buckets.take("a", 100, 1)).toMatchObject({ allowed: false, retryAfterMs: 1 })
      yield* TestClock.adjust(1)
      expect(buckets.take("a", 100, 1)).toMatchObject({ allowed: true, resetMs: 100 })
    }),
  )

  it.effect("a sweep forgets the keys whose bucket is full again and keeps the others", () =>
    Effect.gen(function* () {
      const buckets = yield* onTestClock
      buckets.take("one", 100, 5)
      for (let i = 0; i < 3; i++) buckets.take("three", 100, 5)
      expect(buckets.sweep()).toBe(0)
      expect(buckets.size()).toBe(2)
      yield* TestClock.adjust(99)
      expect(buckets.sweep()).toBe(0)
      // "one" is full again at 100 (its TAT), "three" at 300.
      yield* TestClock.adjust(1)
      expect(buckets.sweep()).toBe(1)
      expect(buckets.size()).toBe(1)
      // What "three" spent is still remembered.
      expect(buckets.take("three", 100, 5)).toMatchObject({ allowed: true, remaining: 2 })
      yield* TestClock.adjust(300)
      expect(buckets.sweep()).toBe(1)
      expect(buckets.size()).toBe(0)
      // A forgotten key starts again with its whole burst.
      expect(buckets.take("three", 100, 5)).toMatchObject({ allowed: true, remaining: 4 })
    }),
  )

  it.effect("a refused request does not keep a key from being swept", () =>
    Effect.gen(function* () {
      const buckets = yield* onTestClock
      buckets.take("a", 100, 1)
      buckets.take("a", 100, 1)
      yield* TestClock.adjust(100)
      expect(buckets.sweep()).toBe(1)
      expect(buckets.size()).toBe(0)
    }),
  )

  it.scoped("the layer's sweep runs every 10 seconds", () =>
    Effect.gen(function* () {
      const buckets = yield* onTestClock
      yield* sweepForever(buckets)
      buckets.take("brief", 1_000, 5)
      // Full again at 60 s.
      buckets.take("long", 30_000, 5)
      buckets.take("long", 30_000, 5)
      yield* TestClock.adjust("9999 millis")
      expect(buckets.size()).toBe(2)
      yield* TestClock.adjust("1 millis")
      expect(buckets.size()).toBe(1)
      yield* TestClock.adjust("40 seconds")
      expect(buckets.size()).toBe(1)
      yield* TestClock.adjust("10 seconds")
      expect(buckets.size()).toBe(0)
    }),
  )
})
