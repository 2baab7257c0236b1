/**
 * What a report needs before it is written so that its figures can be trusted and checked: goals
 * judged on intervals (with each scenario's change known), the check on the run's first round, and
 * notes on how the intervals were made and how to recompute them from report.json.
 */
import { evaluateGoals } from "./goals.ts"
import type { FirstRoundCheck, Report, Row } from "./report/Report.ts"
import { CONFIDENCE, median, RESAMPLES } from "./stats/bootstrap.ts"
import { rowSeedName } from "./stats/row-bootstrap.ts"
import { shiftTime } from "./stats/shift.ts"

/** A first round this many times its contender's other rounds' median p99 was not measured warm. */
const COLD_FACTOR = 2

/**
 * The run's first measured round against the same contender's later rounds. The first row is the
 * first contender measured (the comparison measures each scenario's contenders in row order, the
 * first scenario first), and its first round the first round of the whole run.
 */
export const firstRoundCheck = (rows: ReadonlyArray<Row>): FirstRoundCheck | undefined => {
  const first = rows[0]
  if (first === undefined || first.p99_per_round_ms.length < 2) return undefined
  const [p99, ...others] = first.p99_per_round_ms
  const othersMedian = median(others)
  return {
    scenario: first.scenario,
    algorithm: first.algorithm,
    p99_ms: p99!,
    others_median_ms: othersMedian,
    outlier: p99! > COLD_FACTOR * othersMedian,
  }
}

const firstRoundNote = (check: FirstRoundCheck) =>
  check.outlier
    ? `Warning: the run's first measured round (${check.algorithm} in ${check.scenario}) had a p99 of ` +
      `${check.p99_ms} ms, more than ${COLD_FACTOR}× the median of its other rounds (${check.others_median_ms} ms): ` +
      "the stack was probably not warm yet, which counts against that contender."
    : `The run's first measured round (${check.algorithm} in ${check.scenario}) had a p99 of ${check.p99_ms} ms, ` +
      `within ${COLD_FACTOR}× the median of its other rounds (${check.others_median_ms} ms): no sign of a cold start.`

const confidence = `${Math.round(CONFIDENCE * 100)} %`

export const METHOD_NOTES: ReadonlyArray<string> = [
  `Latency percentiles carry ${confidence} intervals from a two-level (hierarchical) percentile bootstrap of ` +
    `${RESAMPLES.toLocaleString("en-US")} resamples: the rounds are drawn with replacement, then the requests ` +
    "within each drawn round with replacement, so the intervals hold both the spread between rounds and the " +
    "noise within one. n is the number of latencies behind a row's percentiles. The draws are seeded from each " +
    "row's scenario and algorithm (mulberry32 seeded with FNV-1a), so the same data always gives the same interval.",
  "Error shares (errors ÷ requests) use the same two-level bootstrap: rounds with replacement, then each drawn " +
    "round's errors as an exact binomial draw over its requests. Shift times are the median over rounds, " +
    "with an interval from rounds drawn with replacement.",
  `Goals: PASS only when the whole ${confidence} interval meets the target, MISS only when the whole interval ` +
    "misses it, inconclusive otherwise; counts and CPU spread are judged as measured. A comparison with the best " +
    "reference is resampled as a whole: in each resample the best reference is the one with the lowest " +
    "resampled figure, so which reference is best is part of the uncertainty.",
  "Raw data: every row has `rounds`, each with its requests, errors, one-second windows of requests per " +
    "replica, p99 and `histogram`, the round's latencies as an HdrHistogram in microseconds (1 µs to 1 h, " +
    "3 significant digits) in the V2 compressed format, base64-encoded (hdr-histogram-js " +
    "`decodeFromCompressedBase64`, Java `Histogram.decodeFromCompressedByteBuffer`). A row's percentiles are " +
    "those of its rounds' histograms added together, to the histogram's precision.",
]

/** Below this many rounds, drawing rounds with replacement leaves few distinct resamples. */
const FEW_ROUNDS = 5

const fewRoundsNote = (rows: ReadonlyArray<Row>) => {
  const rounds = Math.min(...rows.map((row) => row.rounds.length))
  return rows.length > 0 && rounds < FEW_ROUNDS
    ? `Some rows have only ${rounds} round${rounds === 1 ? "" : "s"}: the bootstrap draws rounds with ` +
        "replacement, so with so few the intervals are wide and coarse (with two, half the resamples hold " +
        `one round twice). Run --rounds ${FEW_ROUNDS} or more for verdicts that settle.`
    : undefined
}

/** Rows of a scenario that changes a replica carry their shift time, even if built without the change. */
const withShiftTimes = (report: Report): ReadonlyArray<Row> =>
  report.rows.map((row) => {
    const change = report.scenarios.find((scenario) => scenario.name === row.scenario)?.change
    return change === undefined || row.shift !== undefined
      ? row
      : { ...row, shift: shiftTime(row.rounds, change, rowSeedName(row.scenario, row.algorithm)) }
  })

/**
 * The report with shift times on the rows that need them, goals judged on intervals, the first-round
 * check, and the notes that explain them.
 */
export const withEvidence = (report: Report): Report => {
  const rows = withShiftTimes(report)
  const check = firstRoundCheck(rows)
  const { first_round: _previous, ...rest } = report
  return {
    ...rest,
    rows,
    goals: evaluateGoals(rows, report.scenarios),
    ...(check === undefined ? {} : { first_round: check }),
    notes: [
      ...report.notes,
      ...METHOD_NOTES,
      ...[fewRoundsNote(rows)].filter((note) => note !== undefined),
      ...(check === undefined ? [] : [firstRoundNote(check)]),
    ],
  }
}
