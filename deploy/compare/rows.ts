/** Turns one measured run into a report row: shares, CPU balance and latency. */
import type { OpenLoopResult } from "./open-loop.ts"
import type { Row } from "./report/Report.ts"

export interface ReplicaCpu {
  /** Mean CPU over the run, percent of one core. */
  readonly percent: number
  /** The replica's allowance, in cores. */
  readonly cores: number
}

/** Standard deviation ÷ mean; 0 for no spread (or no load at all). */
export const coefficientOfVariation = (values: ReadonlyArray<number>): number => {
  const mean = values.reduce((a, b) => a + b, 0) / Math.max(1, values.length)
  if (mean === 0) return 0
  const variance = values.reduce((sum, v) => sum + (v - mean) ** 2, 0) / values.length
  return Math.sqrt(variance) / mean
}

const round = (value: number, digits: number) => Math.round(value * 10 ** digits) / 10 ** digits

export const toRow = (
  scenario: string,
  algorithm: string,
  reference: boolean,
  rateRps: number,
  result: OpenLoopResult,
  cpu: Record<string, ReplicaCpu>,
): Row => {
  const answered = Object.values(result.servedBy).reduce((a, b) => a + b, 0)
  const share = Object.fromEntries(
    Object.keys(cpu).map((name) => [name, round((result.servedBy[name] ?? 0) / Math.max(1, answered), 4)]),
  )
  // Load is compared against each replica's own allowance: 50% of a quarter-core replica is as busy
  // as 50% of a full one.
  const ofAllowance = Object.values(cpu).map(({ percent, cores }) => percent / cores)
  return {
    scenario,
    algorithm,
    reference,
    requests: result.requests,
    errors: result.errors,
    rate_rps: round(rateRps, 1),
    p50_ms: round(result.p50Ms, 2),
    p95_ms: round(result.p95Ms, 2),
    p99_ms: round(result.p99Ms, 2),
    max_ms: round(result.maxMs, 2),
    share,
    cpu: Object.fromEntries(Object.entries(cpu).map(([name, { percent }]) => [name, round(percent, 1)])),
    cpu_max: round(Math.max(...ofAllowance), 1),
    cpu_cv: round(coefficientOfVariation(ofAllowance), 3),
    per_second: result.perSecond,
    p99_per_second_ms: result.p99PerSecondMs.map((ms) => round(ms, 2)),
  }
}
