/**
 * The comparison's promises, checked against its own rows. A goal on latency, error share or shift
 * time is judged on its 95 % bootstrap interval: PASS only when the whole interval meets the target,
 * MISS only when the whole interval misses it, inconclusive otherwise. A goal that cannot be
 * evaluated (no reference installed, a scenario not run) says so instead of passing.
 */
import type { Goal, Interval, Row, Scenario, ScenarioChange } from "./report/Report.ts"
import { INSTALL_REFERENCES } from "./report/table.ts"
import { SCENARIOS } from "./scenarios.ts"
import { type Bootstrapped, combine, percentileInterval, ratio } from "./stats/bootstrap.ts"
import { latencyOf, rowErrorShare, rowShift } from "./stats/row-bootstrap.ts"
import { counted, judged, notEvaluated, round } from "./verdicts.ts"

/** The scenarios the goals speak of, in the order they are listed when scenarios.ts does not name them. */
const GOAL_SCENARIOS = [
  "homogeneous",
  "slow-replica",
  "noisy-neighbour",
  "degradation",
  "heavy-tail",
  "two-balancers",
  "sinkhole",
]
/** Where a load-aware balancer has something to gain over the references: a tighter target. */
const STRICT_SCENARIOS = new Set([
  "slow-replica",
  "noisy-neighbour",
  "degradation",
  "heavy-tail",
  "two-balancers",
])
/** The scenario whose replica fails requests on purpose: errors are expected there, and compared. */
const SINKHOLE = "sinkhole"

const NO_REFERENCE = `no reference ran (${INSTALL_REFERENCES})`

/** Largest share any replica got in any one-second window, over the mean share (1 / replicas). */
export const peakWindowShare = (row: Row): number => {
  const replicas = Object.keys(row.share).length
  let peak = 0
  for (const window of row.per_second) {
    const total = Object.values(window).reduce((a, b) => a + b, 0)
    if (total === 0) continue
    for (const count of Object.values(window)) peak = Math.max(peak, (count / total) * replicas)
  }
  return peak
}

/** How a note shows one kind of figure: the number, and its unit. */
interface Unit {
  readonly number: (value: number) => string
  readonly unit: string
}
const MS: Unit = { number: (value) => value.toFixed(1), unit: "ms" }
const PERCENT: Unit = { number: (fraction) => (fraction * 100).toPrecision(2), unit: "%" }
const SECONDS: Unit = { number: (value) => value.toFixed(1), unit: "s" }
/** `30.0 ms (27.2–32.9)`: a figure and its interval. */
const described = (unit: Unit, point: number, [low, high]: Interval) =>
  `${unit.number(point)} ${unit.unit} (${unit.number(low)}–${unit.number(high)})`
const describeFigure = (unit: Unit, figure: Bootstrapped) =>
  described(unit, figure.point, percentileInterval(figure.replicates))

/**
 * The best of several references, resample by resample: the figure is the lowest of theirs in each
 * resample, so which reference is best is part of the uncertainty. The note names the best one on
 * the measured figures and how often it was the lowest.
 */
const bestReference = (references: ReadonlyArray<{ row: Row; figure: Bootstrapped }>) => {
  const best = combine(
    references.map((reference) => reference.figure),
    (values) => Math.min(...values),
  )
  const leader = references.reduce((a, b) => (b.figure.point < a.figure.point ? b : a))
  let lowest = 0
  for (let b = 0; b < best.replicates.length; b++)
    if (leader.figure.replicates[b] === best.replicates[b]) lowest++
  return { best, leader, lowestShare: lowest / Math.max(1, best.replicates.length) }
}

interface Context {
  readonly rows: ReadonlyArray<Row>
  readonly changes: ReadonlyMap<string, ScenarioChange>
}

const find = (context: Context, scenario: string, algorithm: string) =>
  context.rows.find((row) => row.scenario === scenario && row.algorithm === algorithm)

const referencesIn = (context: Context, scenario: string) =>
  context.rows.filter((row) => row.scenario === scenario && row.reference)

const ran = (context: Context, scenario: string) => context.rows.some((row) => row.scenario === scenario)

/** Why a goal on `algorithm` in `scenario` has nothing to measure, or undefined when it has. */
const absent = (context: Context, scenario: string, algorithm: string) =>
  !ran(context, scenario)
    ? `${scenario} not run`
    : find(context, scenario, algorithm) === undefined
      ? `${algorithm} not run`
      : undefined

/** Adaptive's figure over the best reference's, in one scenario. */
const againstBestReference = (
  context: Context,
  scenario: string,
  name: string,
  limit: number,
  figureOf: (row: Row) => Bootstrapped,
  combineWith: (adaptive: number, best: number) => number,
  unit: Unit,
): Goal => {
  const missing = absent(context, scenario, "adaptive")
  if (missing !== undefined) return notEvaluated(name, "≤", limit, missing)
  const references = referencesIn(context, scenario)
  if (references.length === 0) return notEvaluated(name, "≤", limit, NO_REFERENCE)
  const adaptiveRow = find(context, scenario, "adaptive")!
  const adaptive = figureOf(adaptiveRow)
  const { best, leader, lowestShare } = bestReference(
    references.map((row) => ({ row, figure: figureOf(row) })),
  )
  const figure = combine([adaptive, best], ([a, b]) => combineWith(a!, b!))
  return judged(
    name,
    figure,
    "≤",
    limit,
    `adaptive ${describeFigure(unit, adaptive)} vs best reference ` +
      `${leader.row.algorithm} ${describeFigure(unit, leader.figure)}, ` +
      `the lowest in ${Math.round(lowestShare * 100)} % of resamples`,
  )
}

const p99AgainstReferences = (context: Context, scenario: string, limit: number) =>
  againstBestReference(
    context,
    scenario,
    `${scenario}: adaptive p99 ÷ best reference p99`,
    limit,
    (row) => latencyOf(row).p99,
    ratio,
    MS,
  )

/** Adaptive's p99 over another contender's (or another scenario's), both resampled. */
const p99Ratio = (
  context: Context,
  name: string,
  limit: number,
  [scenario, algorithm]: readonly [string, string],
  [otherScenario, otherAlgorithm]: readonly [string, string],
): Goal => {
  const missing = absent(context, scenario, algorithm) ?? absent(context, otherScenario, otherAlgorithm)
  if (missing !== undefined) return notEvaluated(name, "≤", limit, missing)
  const row = find(context, scenario, algorithm)!
  const other = find(context, otherScenario, otherAlgorithm)!
  const figure = combine([latencyOf(row).p99, latencyOf(other).p99], ([a, b]) => ratio(a!, b!))
  const describe = (r: Row) =>
    `${r.algorithm}${r.scenario === scenario ? "" : ` in ${r.scenario}`} ${describeFigure(MS, latencyOf(r).p99)}`
  return judged(name, figure, "≤", limit, `${describe(row)} vs ${describe(other)}`)
}

const scenarioGoals = (context: Context, scenario: string): Array<Goal> => {
  const goals: Array<Goal> = [p99AgainstReferences(context, scenario, 1.1)]
  if (STRICT_SCENARIOS.has(scenario)) goals.push(p99AgainstReferences(context, scenario, 0.8))
  if (scenario !== SINKHOLE) {
    const name = `${scenario}: adaptive errors`
    const missing = absent(context, scenario, "adaptive")
    const row = find(context, scenario, "adaptive")
    goals.push(
      missing !== undefined || row === undefined
        ? notEvaluated(name, "≤", 0, missing ?? "")
        : counted(name, row.errors, "≤", 0, `of ${row.requests} requests`),
    )
  }
  if (scenario === "slow-replica")
    goals.push(
      p99Ratio(
        context,
        "slow-replica: adaptive p99 ÷ round-robin p99",
        0.5,
        ["slow-replica", "adaptive"],
        ["slow-replica", "round-robin"],
      ),
    )
  if (scenario === SINKHOLE)
    goals.push(
      againstBestReference(
        context,
        scenario,
        "sinkhole: adaptive error share ÷ best reference error share",
        0.5,
        rowErrorShare,
        ratio,
        PERCENT,
      ),
    )
  if (scenario === "degradation") {
    const name = "degradation: adaptive shift time − best reference shift time, s"
    const change = context.changes.get(scenario)
    goals.push(
      change === undefined && ran(context, scenario)
        ? notEvaluated(name, "≤", 0, "the scenario does not say which replica changes")
        : againstBestReference(
            context,
            scenario,
            name,
            0,
            (row) => rowShift(row, change!),
            (adaptive, best) => adaptive - best,
            SECONDS,
          ),
    )
  }
  if (scenario === "two-balancers")
    goals.push(
      p99Ratio(
        context,
        "two-balancers: adaptive p99 ÷ adaptive p99 in slow-replica",
        1.2,
        ["two-balancers", "adaptive"],
        ["slow-replica", "adaptive"],
      ),
    )
  if (scenario === "homogeneous")
    for (const algorithm of ["lease", "hybrid", "adaptive"]) {
      const name = `homogeneous: ${algorithm} CPU coefficient of variation, %`
      const row = find(context, scenario, algorithm)
      goals.push(
        row === undefined
          ? notEvaluated(name, "≤", 15, absent(context, scenario, algorithm) ?? "")
          : counted(name, row.cpu_cv, "≤", 15, "mean CPU per replica over the rounds, no interval"),
      )
    }
  return goals
}

/**
 * Every goal, grouped by scenario. `scenarios` (the report's) tells which replica a scenario changes,
 * for shift times; without it a scenario that changes one cannot have its shift goal evaluated.
 */
export const evaluateGoals = (
  rows: ReadonlyArray<Row>,
  scenarios: ReadonlyArray<Scenario> = [],
): Array<Goal> => {
  const changes = new Map(
    scenarios.flatMap((scenario) =>
      scenario.change === undefined ? [] : ([[scenario.name, scenario.change]] as const),
    ),
  )
  const context: Context = { rows, changes }
  const names = [
    ...new Set([
      ...SCENARIOS.map((scenario) => scenario.name),
      ...GOAL_SCENARIOS,
      ...scenarios.map((scenario) => scenario.name),
      ...rows.map((row) => row.scenario),
    ]),
  ]
  const goals = names.flatMap((scenario) => scenarioGoals(context, scenario))

  const metricsRows = rows.filter((row) => row.algorithm === "metrics")
  const worst = metricsRows.reduce<{ peak: number; scenario: string } | undefined>((acc, row) => {
    const peak = peakWindowShare(row)
    return acc === undefined || peak > acc.peak ? { peak, scenario: row.scenario } : acc
  }, undefined)
  const metricsGoal = "metrics: largest one-second share ÷ mean share"
  goals.push(
    worst === undefined
      ? notEvaluated(metricsGoal, "≤", 2, "metrics not run")
      : counted(metricsGoal, round(worst.peak, 3), "≤", 2, `worst window in ${worst.scenario}`),
  )
  return goals
}
