/** What the comparison shows while it runs: a progress bar (or one line per run off a terminal) and a table per scenario. */
import { SingleBar } from "cli-progress"
import type { Report, Row, Scenario } from "./report/Report.ts"
import { balancerCpuCell, formatNumber, referencesAdvice, shiftCell, withInterval } from "./report/table.ts"
import type { Progress } from "./run.ts"

const pad = (cells: ReadonlyArray<string>, widths: ReadonlyArray<number>) =>
  cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join("  ")

export const formatScenarioTable = (scenario: Scenario, rows: ReadonlyArray<Row>): string => {
  const replicas = Object.keys(scenario.replicas)
  const shift = scenario.change !== undefined
  const header = [
    "algorithm",
    "n",
    "p50 ms (95% CI)",
    "p95 ms (95% CI)",
    "p99 ms (95% CI)",
    "max ms",
    ...(shift ? ["shift s (95% CI)"] : []),
    "errors",
    "cpu max %",
    "cpu cv %",
    "lb cpu ms/req",
    ...replicas,
  ]
  const body = rows.map((row) => [
    row.algorithm,
    String(row.latencies),
    withInterval(row.p50_ms, row.p50_ci_ms),
    withInterval(row.p95_ms, row.p95_ci_ms),
    withInterval(row.p99_ms, row.p99_ci_ms),
    row.max_ms.toFixed(0),
    ...(shift ? [shiftCell(row)] : []),
    String(row.errors),
    row.cpu_max.toFixed(0),
    row.cpu_cv.toFixed(1),
    balancerCpuCell(row),
    ...replicas.map((name) => `${((row.share[name] ?? 0) * 100).toFixed(1)}%`),
  ])
  const widths = header.map((_, i) => Math.max(header[i]!.length, ...body.map((cells) => cells[i]!.length)))
  const allowances = replicas.map((name) => `${name} ${scenario.replicas[name]} cores`).join(", ")
  return [
    `\n${scenario.name}: ${scenario.description}`,
    `  ${scenario.rate_rps} req/s for ${scenario.duration_s} s per row; ${allowances}; n: latencies measured; ` +
      "lb cpu: the balancer's own CPU per request; columns after it: share of requests",
    pad(header, widths),
    widths.map((w) => "-".repeat(w)).join("  "),
    ...body.map((cells) => pad(cells, widths)),
  ].join("\n")
}

/** The reference load balancers, and how to install those that are missing. */
export const formatReferences = (report: Report): string => {
  const entries = Object.entries(report.references)
  const width = Math.max(0, ...entries.map(([name]) => name.length))
  const advice = referencesAdvice(report)
  return [
    "References:",
    ...(entries.length === 0 ? ["  none configured"] : []),
    ...entries.map(
      ([name, reference]) =>
        `  ${name.padEnd(width)}  ${reference.used ? "used   " : "missing"}  ${reference.detail}`,
    ),
    ...(advice === undefined ? [] : [`  ${advice}`]),
  ].join("\n")
}

/** Each goal's verdict, figure with its interval, target and note; a cold first round is called out first. */
export const formatGoals = (report: Report): string => {
  const width = Math.max(...report.goals.map((goal) => goal.verdict.length))
  const lines = report.goals.map((goal) => {
    const measured =
      goal.interval === null
        ? formatNumber(goal.measured)
        : withInterval(goal.measured, goal.interval, formatNumber)
    const figure =
      goal.verdict === "not evaluated" ? "" : `: ${measured} ${goal.comparison} ${formatNumber(goal.limit)}`
    return `  ${goal.verdict.padEnd(width)}  ${goal.name}${figure}${goal.note === "" ? "" : `  ${goal.note}`}`
  })
  const cold = report.first_round?.outlier
    ? [
        `Warning: the first measured round (${report.first_round.algorithm} in ${report.first_round.scenario}) ` +
          `had p99 ${report.first_round.p99_ms} ms, over twice its other rounds' median ` +
          `(${report.first_round.others_median_ms} ms): not warm yet.`,
        "",
      ]
    : []
  return [
    ...cold,
    "Goals (PASS or MISS only when the whole 95% interval is on one side of the target):",
    ...lines,
  ].join("\n")
}

/** A bar on a terminal; elsewhere (CI logs) one line per run, which a bar would garble. */
export const consoleProgress = (): Progress => {
  const tty = process.stdout.isTTY === true
  const bar = new SingleBar({
    format: "{bar} {value}/{total} runs · {label}",
    hideCursor: true,
    clearOnComplete: true,
  })
  let done = 0
  let total = 0
  return {
    start: (count) => {
      total = count
      if (tty) bar.start(count, 0, { label: "starting" })
    },
    step: (label) => {
      done++
      if (tty) bar.update(done - 1, { label })
      else console.log(`[${done}/${total}] ${label}`)
    },
    scenarioDone: (scenario, rows) => {
      if (tty) bar.stop()
      console.log(formatScenarioTable(scenario, rows))
      if (tty && done < total) bar.start(total, done, { label: "" })
    },
    stop: () => {
      if (tty) bar.stop()
    },
  }
}
