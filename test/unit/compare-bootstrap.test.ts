/**
 * The comparison's statistics: exact binomial draws, the two-level bootstrap of latency percentiles
 * (against a plain resampling of every request), error shares, shift times and verdicts on intervals.
 */
import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import {
  type Buckets,
  bootstrapErrorShare,
  bootstrapMedian,
  bootstrapQuantiles,
  combine,
  percentileInterval,
  ratio,
} from "../../deploy/compare/stats/bootstrap.ts"
import { bucketsOf, latencyHistogram } from "../../deploy/compare/stats/histogram.ts"
import { binomial, type Random, seededRandom, seedOf } from "../../deploy/compare/stats/random.ts"
import { roundShift, shiftTime } from "../../deploy/compare/stats/shift.ts"
import { verdictOf } from "../../deploy/compare/verdicts.ts"

/** Latencies (ms) with a floor and an exponential tail, as a balancer's often look. */
const latencies = (count: number, random: Random, tailMs = 20, floorMs = 2) =>
  Array.from({ length: count }, () => floorMs - tailMs * Math.log(1 - random()))

const bucketsFrom = (values: ReadonlyArray<number>): Buckets => bucketsOf(latencyHistogram(values))

const roundsOf = (rounds: number, perRound: number, seed: number) => {
  const random = seededRandom(seed)
  return Array.from({ length: rounds }, () => latencies(perRound, random))
}

const width = ([low, high]: readonly [number, number]) => high - low

/** Every request of every resample drawn one by one: slow, but plainly what the bootstrap means. */
const plainBootstrap = (rounds: ReadonlyArray<ReadonlyArray<number>>, quantile: number, seed: number) => {
  const random = seededRandom(seed)
  const sorted = rounds
    .map((round) => bucketsFrom(round))
    .map((buckets) => buckets.values.flatMap((value, i) => Array<number>(buckets.counts[i]!).fill(value)))
  const replicates = new Float64Array(400)
  for (let b = 0; b < replicates.length; b++) {
    const drawn: Array<number> = []
    for (let r = 0; r < sorted.length; r++) {
      const round = sorted[Math.floor(random() * sorted.length)]!
      for (let i = 0; i < round.length; i++) drawn.push(round[Math.floor(random() * round.length)]!)
    }
    drawn.sort((a, b) => a - b)
    replicates[b] = drawn[Math.max(1, Math.ceil(quantile * drawn.length)) - 1]!
  }
  return percentileInterval(replicates)
}

describe("binomial draws", () => {
  it("have the binomial's mean and variance, from 0 up and from the mode out", () => {
    const random = seededRandom(7)
    for (const [n, p] of [
      [12, 0.3],
      [2000, 0.5],
      [2000, 0.02],
      [500, 0.93],
    ] as const) {
      const draws = Array.from({ length: 20_000 }, () => binomial(n, p, random))
      expect(draws.every((x) => Number.isInteger(x) && x >= 0 && x <= n)).toBe(true)
      const mean = draws.reduce((a, b) => a + b, 0) / draws.length
      const variance = draws.reduce((sum, x) => sum + (x - mean) ** 2, 0) / draws.length
      const sd = Math.sqrt(n * p * (1 - p))
      expect(Math.abs(mean - n * p)).toBeLessThan((4 * sd) / Math.sqrt(draws.length))
      expect(variance / (n * p * (1 - p))).toBeGreaterThan(0.93)
      expect(variance / (n * p * (1 - p))).toBeLessThan(1.07)
    }
  })

  it("are certain at the edges", () => {
    const random = seededRandom(1)
    expect(binomial(0, 0.5, random)).toBe(0)
    expect(binomial(50, 0, random)).toBe(0)
    expect(binomial(50, 1, random)).toBe(50)
  })
})

describe("two-level bootstrap of latency percentiles", () => {
  it("gives the histogram's own percentiles as its point estimates", () => {
    const rounds = roundsOf(3, 1500, 11)
    const pooled = latencyHistogram(rounds.flat())
    const figures = bootstrapQuantiles(rounds.map(bucketsFrom), [0.5, 0.95, 0.99], { seed: 1, resamples: 50 })
    expect(figures.map((figure) => figure.point)).toEqual(
      [50, 95, 99].map((p) => pooled.getValueAtPercentile(p)),
    )
  })

  it("matches resampling every request one by one", () => {
    const rounds = roundsOf(4, 800, 3)
    for (const quantile of [0.5, 0.99]) {
      const [figure] = bootstrapQuantiles(rounds.map(bucketsFrom), [quantile], { seed: 5, resamples: 2000 })
      const [low, high] = percentileInterval(figure!.replicates)
      const [plainLow, plainHigh] = plainBootstrap(rounds, quantile, 9)
      // Two Monte Carlo estimates of the same interval: the 97.5th percentile of a few hundred resamples
      // moves by a fifth of the width from one seed to the next.
      const tolerance = 0.25 * (plainHigh - plainLow)
      expect(Math.abs(low - plainLow)).toBeLessThan(tolerance)
      expect(Math.abs(high - plainHigh)).toBeLessThan(tolerance)
    }
  })

  it.prop(
    "holds the point estimate for well-behaved data",
    [fc.integer({ min: 2, max: 6 }), fc.integer({ min: 200, max: 1500 }), fc.integer()],
    ([rounds, perRound, seed]) => {
      const figures = bootstrapQuantiles(
        roundsOf(rounds, perRound, seed).map(bucketsFrom),
        [0.5, 0.95, 0.99],
        {
          seed,
          resamples: 300,
        },
      )
      for (const figure of figures) {
        const [low, high] = percentileInterval(figure.replicates)
        expect(low).toBeLessThanOrEqual(figure.point)
        expect(high).toBeGreaterThanOrEqual(figure.point)
      }
    },
    { fastCheck: { seed: 20261202, numRuns: 25 } },
  )

  it("narrows as the samples grow", () => {
    const interval = (perRound: number) => {
      const [p99] = bootstrapQuantiles(roundsOf(5, perRound, 21).map(bucketsFrom), [0.99], { seed: 3 })
      return percentileInterval(p99!.replicates)
    }
    expect(width(interval(4000))).toBeLessThan(width(interval(400)))
  })

  it("widens when the rounds disagree, which resampling requests alone would hide", () => {
    const random = seededRandom(4)
    const alike = [latencies(1000, random), latencies(1000, random), latencies(1000, random)]
    const apart = [latencies(1000, random, 10), latencies(1000, random, 20), latencies(1000, random, 40)]
    const [calm] = bootstrapQuantiles(alike.map(bucketsFrom), [0.99], { seed: 8 })
    const [spread] = bootstrapQuantiles(apart.map(bucketsFrom), [0.99], { seed: 8 })
    expect(width(percentileInterval(spread!.replicates))).toBeGreaterThan(
      2 * width(percentileInterval(calm!.replicates)),
    )
  })

  it("is the same for the same data and seed, and differs with the seed", () => {
    const rounds = roundsOf(3, 500, 2).map(bucketsFrom)
    const once = bootstrapQuantiles(rounds, [0.99], { seed: seedOf("slow-replica/adaptive") })
    const again = bootstrapQuantiles(rounds, [0.99], { seed: seedOf("slow-replica/adaptive") })
    const other = bootstrapQuantiles(rounds, [0.99], { seed: seedOf("slow-replica/lease") })
    expect(again[0]!.replicates).toEqual(once[0]!.replicates)
    expect(other[0]!.replicates).not.toEqual(once[0]!.replicates)
  })

  it("leaves out rounds that recorded nothing, and gives 0 for no latency at all", () => {
    const rounds = roundsOf(2, 300, 6).map(bucketsFrom)
    const empty: Buckets = { values: [], counts: [] }
    const [withEmpty] = bootstrapQuantiles([...rounds, empty], [0.99], { seed: 1 })
    const [without] = bootstrapQuantiles(rounds, [0.99], { seed: 1 })
    expect(withEmpty).toEqual(without)
    const [nothing] = bootstrapQuantiles([empty], [0.99], { seed: 1, resamples: 10 })
    expect(nothing!.point).toBe(0)
  })
})

describe("error shares, medians and combined figures", () => {
  it("bootstraps an error share around the pooled share", () => {
    const share = bootstrapErrorShare(
      [
        { requests: 1000, errors: 50 },
        { requests: 1000, errors: 70 },
        { requests: 1000, errors: 60 },
      ],
      { seed: 2 },
    )
    expect(share.point).toBeCloseTo(0.06, 10)
    const [low, high] = percentileInterval(share.replicates)
    expect(low).toBeLessThan(0.06)
    expect(high).toBeGreaterThan(0.06)
    expect(low).toBeGreaterThan(0.04)
    expect(high).toBeLessThan(0.08)
  })

  it("gives no errors an interval of exactly 0", () => {
    const share = bootstrapErrorShare([{ requests: 500, errors: 0 }], { seed: 2 })
    expect(percentileInterval(share.replicates)).toEqual([0, 0])
  })

  it("takes the median over rounds, and bootstraps it over rounds", () => {
    const median = bootstrapMedian([3, 1, 2, 10], { seed: 1 })
    expect(median.point).toBe(2.5)
    const [low, high] = percentileInterval(median.replicates)
    expect(low).toBeGreaterThanOrEqual(1)
    expect(high).toBeLessThanOrEqual(10)
  })

  it("combines figures resample by resample, the best reference being chosen in each", () => {
    const figure = (point: number, replicates: ReadonlyArray<number>) => ({
      point,
      replicates: Float64Array.from(replicates),
    })
    const adaptive = figure(10, [10, 11, 9])
    const first = figure(20, [20, 30, 20])
    const second = figure(25, [25, 22, 40])
    const best = combine([first, second], (values) => Math.min(...values))
    expect([...best.replicates]).toEqual([20, 22, 20])
    const ratioToBest = combine([adaptive, best], ([a, b]) => ratio(a!, b!))
    expect(ratioToBest.point).toBe(0.5)
    expect([...ratioToBest.replicates]).toEqual([0.5, 0.5, 0.45])
    expect(ratio(0, 0)).toBe(0)
    expect(ratio(1, 0)).toBe(Number.POSITIVE_INFINITY)
  })
})

describe("shift time", () => {
  const change = { at_s: 2, replica: "web-3", fair_share_after: 0.2 }
  const window = (web3: number) => ({ "web-1": 10, "web-2": 10, "web-3": web3 })

  it("counts from the change to the first window in which the replica's share is below fair", () => {
    const perSecond = [window(10), window(10), window(10), window(6), window(2), window(1)]
    // web-3 has 6 of 26 (23 %) at second 3, 2 of 22 (9 %) at second 4.
    expect(roundShift(perSecond, change)).toEqual({ seconds: 2, shifted: true })
    expect(roundShift([window(10), window(10), window(1)], change)).toEqual({ seconds: 0, shifted: true })
  })

  it("counts the rest of the round, flagged, when the share never falls", () => {
    expect(roundShift([window(10), window(10), window(10), window(10)], change)).toEqual({
      seconds: 2,
      shifted: false,
    })
  })

  it("is the median over rounds, with the rounds that never shifted counted", () => {
    const rounds = [
      [window(10), window(10), window(1), window(1)],
      [window(10), window(10), window(10), window(1)],
      [window(10), window(10), window(10), window(10)],
    ].map((per_second) => ({ per_second }))
    const shift = shiftTime(rounds, change, "degradation/adaptive")
    expect(shift.per_round_s).toEqual([0, 1, 2])
    expect(shift.median_s).toBe(1)
    expect(shift.unshifted_rounds).toBe(1)
    expect(shift.ci_s[0]).toBeGreaterThanOrEqual(0)
    expect(shift.ci_s[1]).toBeLessThanOrEqual(2)
  })
})

describe("verdicts on intervals", () => {
  it("passes or misses only when the whole interval is on one side of the limit", () => {
    expect(verdictOf(0.7, [0.6, 0.79], "≤", 0.8)).toBe("PASS")
    expect(verdictOf(0.9, [0.81, 1.0], "≤", 0.8)).toBe("MISS")
    expect(verdictOf(0.78, [0.7, 0.86], "≤", 0.8)).toBe("inconclusive")
    expect(verdictOf(0.9, [0.7, 0.95], "≥", 0.6)).toBe("PASS")
    expect(verdictOf(0.5, [0.4, 0.55], "≥", 0.6)).toBe("MISS")
    expect(verdictOf(0.7, [0.5, 0.8], "≥", 0.6)).toBe("inconclusive")
  })

  it("judges figures without an interval on their value, and nothing measured as not evaluated", () => {
    expect(verdictOf(0, null, "≤", 0)).toBe("PASS")
    expect(verdictOf(3, null, "≤", 0)).toBe("MISS")
    expect(verdictOf(Number.NaN, null, "≤", 0)).toBe("not evaluated")
  })
})
