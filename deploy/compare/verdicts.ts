/** A goal's verdict from its figure: on the whole 95 % interval where there is one, else on the value. */
import type { Goal, Interval, Verdict } from "./report/Report.ts"
import { type Bootstrapped, percentileInterval } from "./stats/bootstrap.ts"

export type Comparison = "≤" | "≥"

/** Figures in report.json keep the digits that matter; infinities and NaN stay as they are. */
export const round = (value: number, digits: number) =>
  Number.isFinite(value) ? Math.round(value * 10 ** digits) / 10 ** digits : value

const meets = (value: number, comparison: Comparison, limit: number) =>
  comparison === "≤" ? value <= limit : value >= limit

/** A figure without an interval is judged on its value; one with an interval, on the whole interval. */
export const verdictOf = (
  measured: number,
  interval: Interval | null,
  comparison: Comparison,
  limit: number,
): Verdict => {
  if (interval === null) {
    if (Number.isNaN(measured)) return "not evaluated"
    return meets(measured, comparison, limit) ? "PASS" : "MISS"
  }
  const [low, high] = interval
  if (Number.isNaN(low) || Number.isNaN(high)) return "inconclusive"
  const worst = comparison === "≤" ? high : low
  const best = comparison === "≤" ? low : high
  if (meets(worst, comparison, limit)) return "PASS"
  if (!meets(best, comparison, limit)) return "MISS"
  return "inconclusive"
}

/** Nothing to measure: the note says why (a scenario or a contender not run, no reference). */
export const notEvaluated = (name: string, comparison: Comparison, limit: number, note: string): Goal => ({
  name,
  measured: Number.NaN,
  interval: null,
  limit,
  comparison,
  verdict: "not evaluated",
  note,
})

/** A bootstrapped figure, judged on the 95 % interval of its replicates. */
export const judged = (
  name: string,
  figure: Bootstrapped,
  comparison: Comparison,
  limit: number,
  note: string,
): Goal => {
  const [low, high] = percentileInterval(figure.replicates)
  const interval: Interval = [round(low, 4), round(high, 4)]
  const measured = round(figure.point, 4)
  return {
    name,
    measured,
    interval,
    limit,
    comparison,
    verdict: verdictOf(measured, interval, comparison, limit),
    note,
  }
}

/** A count or a spread taken as measured, without an interval. */
export const counted = (
  name: string,
  measured: number,
  comparison: Comparison,
  limit: number,
  note: string,
): Goal => ({
  name,
  measured,
  interval: null,
  limit,
  comparison,
  verdict: verdictOf(measured, null, comparison, limit),
  note,
})
