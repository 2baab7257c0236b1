/**
 * A report row's bootstrapped figures, for goals that combine rows resample by resample. Each row
 * seeds its draws from its own scenario and algorithm, so two rows never share a stream of draws and
 * the figures can be recomputed from report.json alone.
 */
import type { Row, ScenarioChange } from "../report/Report.ts"
import { type Bootstrapped, type Buckets, bootstrapErrorShare, bootstrapQuantiles } from "./bootstrap.ts"
import { bucketsOf, decodeHistogram } from "./histogram.ts"
import { seedOf } from "./random.ts"
import { bootstrapShift } from "./shift.ts"

export interface LatencyFigures {
  readonly p50: Bootstrapped
  readonly p95: Bootstrapped
  readonly p99: Bootstrapped
}

export const rowSeedName = (scenario: string, algorithm: string): string => `${scenario}/${algorithm}`

/** Percentiles in milliseconds from the rounds' histogram buckets (microseconds). */
export const bootstrapLatency = (rounds: ReadonlyArray<Buckets>, seedName: string): LatencyFigures => {
  const [p50, p95, p99] = bootstrapQuantiles(rounds, [0.5, 0.95, 0.99], { seed: seedOf(seedName) }).map(
    ({ point, replicates }) => ({ point: point / 1000, replicates: replicates.map((us) => us / 1000) }),
  )
  return { p50: p50!, p95: p95!, p99: p99! }
}

const latencyOfRow = new WeakMap<Row, LatencyFigures>()

/** Kept by the code that built the row, so that goals do not resample it again. */
export const rememberLatency = (row: Row, figures: LatencyFigures): void => {
  latencyOfRow.set(row, figures)
}

/** The row's latency percentiles with their replicates; from its rounds' histograms if not kept. */
export const latencyOf = (row: Row): LatencyFigures => {
  const known = latencyOfRow.get(row)
  if (known !== undefined) return known
  const figures = bootstrapLatency(
    row.rounds.map((round) => bucketsOf(decodeHistogram(round.histogram))),
    rowSeedName(row.scenario, row.algorithm),
  )
  latencyOfRow.set(row, figures)
  return figures
}

export const errorShareOf = (
  scenario: string,
  algorithm: string,
  rounds: ReadonlyArray<{ readonly requests: number; readonly errors: number }>,
): Bootstrapped => bootstrapErrorShare(rounds, { seed: seedOf(`${rowSeedName(scenario, algorithm)}/errors`) })

export const rowErrorShare = (row: Row): Bootstrapped => errorShareOf(row.scenario, row.algorithm, row.rounds)

export const rowShift = (row: Row, change: ScenarioChange): Bootstrapped =>
  bootstrapShift(row.rounds, change, rowSeedName(row.scenario, row.algorithm)).median
