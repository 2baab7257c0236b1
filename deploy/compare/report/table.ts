/** The report's tables as plain text cells, so that the HTML and Markdown pages show the same figures. */
import type { Goal, Interval, Report, Row, Scenario, Verdict } from "./Report.ts"

export type Align = "left" | "right"

export interface TableRow {
  readonly cells: ReadonlyArray<string>
  /** A reference load balancer's row, set apart from SwarmGuard's algorithms. */
  readonly reference: boolean
}

export interface Table {
  readonly header: ReadonlyArray<string>
  readonly align: ReadonlyArray<Align>
  readonly rows: ReadonlyArray<TableRow>
}

/** How to get the reference load balancers where they are missing (Debian and Ubuntu). */
export const INSTALL_REFERENCES = "apt-get install nginx-light haproxy"

export const verdict = (goal: Goal): Verdict => goal.verdict

const fixed = (digits: number) =>
  new Intl.NumberFormat("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits })
const oneDecimal = fixed(1)
const whole = fixed(0)

/**
 * Goals mix ratios, milliseconds and percentages: keep the digits that matter at each magnitude. A goal
 * not evaluated may have no measurement (NaN, or null once through JSON): shown as a dash.
 */
export const formatNumber = (value: number): string => {
  if (value === Number.POSITIVE_INFINITY) return "∞"
  if (!Number.isFinite(value)) return "–"
  const magnitude = Math.abs(value)
  const digits = Number.isInteger(value) || magnitude >= 100 ? 0 : magnitude >= 1 ? 2 : 3
  return new Intl.NumberFormat("en-US", { maximumFractionDigits: digits }).format(value)
}

const ms = (value: number) => oneDecimal.format(value)
/** A figure with its 95 % interval: `31.2 (29.8–33.0)`. */
export const withInterval = (value: number, interval: Interval, format: (value: number) => string = ms) =>
  `${format(value)} (${format(interval[0])}–${format(interval[1])})`
const percent = (fraction: number) => `${oneDecimal.format(fraction * 100)}%`

// Errors are usually a tiny fraction: two significant digits keep 2 in 9,000 from showing as 0.0%.
const errorRate = new Intl.NumberFormat("en-US", { style: "percent", maximumSignificantDigits: 2 })

const errors = (row: Row) =>
  row.errors === 0 || row.requests === 0
    ? whole.format(row.errors)
    : `${whole.format(row.errors)} (${errorRate.format(row.errors / row.requests)})`

/** The scenario's replicas in its own order, then any that only the rows name. */
export const replicasOf = (scenario: Scenario, rows: ReadonlyArray<Row>): ReadonlyArray<string> => {
  const names = new Set(Object.keys(scenario.replicas))
  for (const row of rows) for (const name of Object.keys(row.share)) names.add(name)
  return [...names]
}

export const rowsOf = (report: Report, scenario: Scenario): ReadonlyArray<Row> =>
  report.rows.filter((row) => row.scenario === scenario.name)

/** Median shift time over the rounds with its interval; `*` when some round never shifted. */
export const shiftCell = (row: Row): string =>
  row.shift === undefined
    ? "–"
    : `${withInterval(row.shift.median_s, row.shift.ci_s)}${row.shift.unshifted_rounds > 0 ? "*" : ""}`

export const scenarioTable = (report: Report, scenario: Scenario): Table => {
  const rows = rowsOf(report, scenario)
  const replicas = replicasOf(scenario, rows)
  const shift = scenario.change !== undefined
  return {
    header: [
      "algorithm",
      "requests",
      "errors",
      "n",
      "p50 ms (95% CI)",
      "p95 ms (95% CI)",
      "p99 ms (95% CI)",
      "max ms",
      ...(shift ? ["shift s (95% CI)"] : []),
      "cpu max %",
      "cpu cv %",
      "lb cpu ms/req",
      ...replicas.map((name) => `share ${name}`),
    ],
    align: ["left", ...Array<Align>(10 + (shift ? 1 : 0) + replicas.length).fill("right")],
    rows: rows.map((row) => ({
      reference: row.reference,
      cells: [
        row.algorithm,
        whole.format(row.requests),
        errors(row),
        whole.format(row.latencies),
        withInterval(row.p50_ms, row.p50_ci_ms),
        withInterval(row.p95_ms, row.p95_ci_ms),
        withInterval(row.p99_ms, row.p99_ci_ms),
        ms(row.max_ms),
        ...(shift ? [shiftCell(row)] : []),
        oneDecimal.format(row.cpu_max),
        oneDecimal.format(row.cpu_cv),
        balancerCpuCell(row),
        ...replicas.map((name) => {
          const share = row.share[name]
          return share === undefined ? "–" : percent(share)
        }),
      ],
    })),
  }
}

/** The balancer's own CPU per request (ms); a dash where it could not be read. Older reports lack it. */
export const balancerCpuCell = (row: Row): string =>
  row.balancer_cpu_ms === null || row.balancer_cpu_ms === undefined ? "–" : row.balancer_cpu_ms.toFixed(2)

/** Column of the goals table that holds the verdict. */
export const VERDICT_COLUMN = 4

export const goalsTable = (report: Report): Table => ({
  header: ["goal", "measured", "95% CI", "target", "result", "note"],
  align: ["left", "right", "right", "right", "left", "left"],
  rows: report.goals.map((goal) => ({
    reference: false,
    cells: [
      goal.name,
      formatNumber(goal.measured),
      goal.interval === null ? "–" : `${formatNumber(goal.interval[0])}–${formatNumber(goal.interval[1])}`,
      `${goal.comparison} ${formatNumber(goal.limit)}`,
      verdict(goal),
      goal.note,
    ],
  })),
})

export const referencesTable = (report: Report): Table => ({
  header: ["reference", "status", "detail"],
  align: ["left", "left", "left"],
  rows: Object.entries(report.references).map(([name, reference]) => ({
    reference: false,
    cells: [name, reference.used ? "used" : "missing", reference.detail],
  })),
})

/** What to do about missing references, or undefined when every one ran. */
export const referencesAdvice = (report: Report): string | undefined =>
  Object.values(report.references).some((reference) => !reference.used)
    ? `To run the missing references on Debian or Ubuntu: ${INSTALL_REFERENCES}. Goals that compare ` +
      "with a reference are not evaluated without one."
    : undefined

/** One line on the scenario's set-up: replicas with their CPU allowance, arrival rate and length. */
export const scenarioSetup = (scenario: Scenario): string => {
  const replicas = Object.entries(scenario.replicas)
    .map(([name, cores]) => `${name} ${formatNumber(cores)} ${cores === 1 ? "core" : "cores"}`)
    .join(", ")
  return `${replicas}; ${formatNumber(scenario.rate_rps)} requests/s for ${formatNumber(scenario.duration_s)} s`
}

/** `2026-11-25 18:30:00 UTC`, or the field as written when it is not a date. */
export const generatedAt = (report: Report): string => {
  const date = new Date(report.generated_at)
  return Number.isNaN(date.getTime())
    ? report.generated_at
    : `${date.toISOString().slice(0, 19).replace("T", " ")} UTC`
}

export const machineLine = (report: Report): string =>
  `${report.target} target; ${report.machine.cpus} CPUs, Node ${report.machine.node}, load average ` +
  report.machine.load_average.map((load) => load.toFixed(2)).join(" / ")
