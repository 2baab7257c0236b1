/** Turns measured runs into a report row: shares, CPU balance and latency. */
import { build } from "hdr-histogram-js"
import type { OpenLoopResult } from "./open-loop.ts"
import type { Row } from "./report/Report.ts"

export interface ReplicaCpu {
  /** Mean CPU over the run, percent of one core. */
  readonly percent: number
  /** The replica's allowance, in cores. */
  readonly cores: number
}

/** Standard deviation ÷ mean, as a fraction; 0 for no spread (or no load at all). */
export const coefficientOfVariation = (values: ReadonlyArray<number>): number => {
  const mean = values.reduce((a, b) => a + b, 0) / Math.max(1, values.length)
  if (mean === 0) return 0
  const variance = values.reduce((sum, v) => sum + (v - mean) ** 2, 0) / values.length
  return Math.sqrt(variance) / mean
}

const round = (value: number, digits: number) => Math.round(value * 10 ** digits) / 10 ** digits

/** Percentiles of a set of latencies (ms), through an HDR histogram at microsecond resolution. */
const latencySummary = (latencies: ReadonlyArray<number>) => {
  const histogram = build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 3_600_000_000,
    numberOfSignificantValueDigits: 3,
  })
  for (const ms of latencies) histogram.recordValue(Math.max(1, Math.round(ms * 1000)))
  const at = (percentile: number) =>
    latencies.length === 0 ? 0 : histogram.getValueAtPercentile(percentile) / 1000
  const summary = {
    p50: at(50),
    p95: at(95),
    p99: at(99),
    max: latencies.length === 0 ? 0 : histogram.maxValue / 1000,
  }
  histogram.destroy()
  return summary
}

const sum = (values: ReadonlyArray<number>) => values.reduce((a, b) => a + b, 0)

/**
 * One row from a contender's rounds in a scenario: their requests pooled (percentiles over all of
 * them, windows one after the other) and each replica's CPU averaged over the rounds.
 */
export const toRow = (
  scenario: string,
  algorithm: string,
  reference: boolean,
  rateRps: number,
  rounds: ReadonlyArray<{ readonly result: OpenLoopResult; readonly cpu: Record<string, ReplicaCpu> }>,
): Row => {
  const replicas = Object.keys(rounds[0]!.cpu)
  const servedBy = (name: string) => sum(rounds.map(({ result }) => result.servedBy[name] ?? 0))
  const answered = sum(rounds.flatMap(({ result }) => Object.values(result.servedBy)))
  const share = Object.fromEntries(
    replicas.map((name) => [name, round(servedBy(name) / Math.max(1, answered), 4)]),
  )
  const cpuPercent = (name: string) => sum(rounds.map(({ cpu }) => cpu[name]!.percent)) / rounds.length
  // Load is compared against each replica's own allowance: 50% of a quarter-core replica is as busy
  // as 50% of a full one.
  const ofAllowance = replicas.map((name) => cpuPercent(name) / rounds[0]!.cpu[name]!.cores)
  const windows = rounds.flatMap(({ result }) => result.latenciesPerSecond)
  const latency = latencySummary(windows.flat())
  return {
    scenario,
    algorithm,
    reference,
    requests: sum(rounds.map(({ result }) => result.requests)),
    errors: sum(rounds.map(({ result }) => result.errors)),
    rate_rps: round(rateRps, 1),
    p50_ms: round(latency.p50, 2),
    p95_ms: round(latency.p95, 2),
    p99_ms: round(latency.p99, 2),
    max_ms: round(latency.max, 2),
    share,
    cpu: Object.fromEntries(replicas.map((name) => [name, round(cpuPercent(name), 1)])),
    cpu_max: round(Math.max(...ofAllowance), 1),
    // A percentage, as the report prints it and the goals state it ("≤ 15 %").
    cpu_cv: round(coefficientOfVariation(ofAllowance) * 100, 1),
    per_second: rounds.flatMap(({ result }) => result.perSecond),
    p99_per_second_ms: windows.map((latencies) => round(latencySummary(latencies).p99, 2)),
  }
}
