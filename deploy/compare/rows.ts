/** Turns measured runs into a report row: shares, CPU balance, latency with its intervals, and raw data. */
import type { OpenLoopResult } from "./open-loop.ts"
import type { Interval, Round, Row, ScenarioChange } from "./report/Report.ts"
import { percentileInterval } from "./stats/bootstrap.ts"
import { bucketsOf, encodeHistogram, latencyHistogram } from "./stats/histogram.ts"
import { bootstrapLatency, errorShareOf, rememberLatency, rowSeedName } from "./stats/row-bootstrap.ts"
import { shiftTime } from "./stats/shift.ts"

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
const roundInterval = ([low, high]: Interval, digits: number): Interval => [
  round(low, digits),
  round(high, digits),
]

/** The 99th percentile (ms) of some latencies, as the histograms give it; 0 for none. */
const p99Of = (latencies: ReadonlyArray<number>) => {
  if (latencies.length === 0) return 0
  const histogram = latencyHistogram(latencies)
  const p99 = histogram.getValueAtPercentile(99) / 1000
  histogram.destroy()
  return p99
}

const sum = (values: ReadonlyArray<number>) => values.reduce((a, b) => a + b, 0)

/** What one round of one contender measured. */
export interface MeasuredRound {
  readonly result: OpenLoopResult
  readonly cpu: Record<string, ReplicaCpu>
  /** CPU ms the contender's processes spent over the measured window, when it can be read. */
  readonly contenderCpuMs?: number | undefined
}

/** The contender's CPU per request over all rounds, or null when any round could not read it. */
const contenderCpuPerRequest = (rounds: ReadonlyArray<MeasuredRound>): number | null => {
  if (rounds.some((measured) => measured.contenderCpuMs === undefined)) return null
  const requests = sum(rounds.map(({ result }) => result.requests))
  return requests === 0 ? null : round(sum(rounds.map((measured) => measured.contenderCpuMs!)) / requests, 3)
}

/**
 * One row from a contender's rounds in a scenario: percentiles over all their requests with
 * bootstrap intervals, each round's raw data, and each replica's CPU averaged over the rounds. With
 * the scenario's `change`, the row also carries how long the contender took to shift load.
 */
export const toRow = (
  scenario: string,
  algorithm: string,
  reference: boolean,
  rateRps: number,
  rounds: ReadonlyArray<MeasuredRound>,
  change?: ScenarioChange,
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

  const histograms = rounds.map(({ result }) => latencyHistogram(result.latenciesPerSecond.flat()))
  const seedName = rowSeedName(scenario, algorithm)
  const latency = bootstrapLatency(histograms.map(bucketsOf), seedName)
  const roundData: Array<Round> = rounds.map(({ result }, index) => ({
    requests: result.requests,
    errors: result.errors,
    latencies: histograms[index]!.totalCount,
    p99_ms: round(
      histograms[index]!.totalCount === 0 ? 0 : histograms[index]!.getValueAtPercentile(99) / 1000,
      2,
    ),
    per_second: result.perSecond,
    histogram: encodeHistogram(histograms[index]!),
  }))
  const maxMs = Math.max(0, ...histograms.map((histogram) => histogram.maxValue)) / 1000
  for (const histogram of histograms) histogram.destroy()
  const errorShare = errorShareOf(scenario, algorithm, roundData)
  const windows = rounds.flatMap(({ result }) => result.latenciesPerSecond)

  const row: Row = {
    scenario,
    algorithm,
    reference,
    requests: sum(rounds.map(({ result }) => result.requests)),
    errors: sum(rounds.map(({ result }) => result.errors)),
    rate_rps: round(rateRps, 1),
    latencies: sum(roundData.map((data) => data.latencies)),
    p50_ms: round(latency.p50.point, 2),
    p95_ms: round(latency.p95.point, 2),
    p99_ms: round(latency.p99.point, 2),
    p50_ci_ms: roundInterval(percentileInterval(latency.p50.replicates), 2),
    p95_ci_ms: roundInterval(percentileInterval(latency.p95.replicates), 2),
    p99_ci_ms: roundInterval(percentileInterval(latency.p99.replicates), 2),
    max_ms: round(maxMs, 2),
    balancer_cpu_ms: contenderCpuPerRequest(rounds),
    error_share: round(errorShare.point, 5),
    error_share_ci: roundInterval(percentileInterval(errorShare.replicates), 5),
    share,
    cpu: Object.fromEntries(replicas.map((name) => [name, round(cpuPercent(name), 1)])),
    cpu_max: round(Math.max(...ofAllowance), 1),
    // A percentage, as the report prints it and the goals state it ("≤ 15 %").
    cpu_cv: round(coefficientOfVariation(ofAllowance) * 100, 1),
    per_second: rounds.flatMap(({ result }) => result.perSecond),
    p99_per_second_ms: windows.map((latencies) => round(p99Of(latencies), 2)),
    p99_per_round_ms: roundData.map((data) => data.p99_ms),
    rounds: roundData,
    ...(change === undefined ? {} : { shift: shiftTime(roundData, change, seedName) }),
  }
  rememberLatency(row, latency)
  return row
}
