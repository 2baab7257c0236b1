/** What the comparison shows while it runs: a progress bar (or one line per run off a terminal) and a table per scenario. */
import { SingleBar } from "cli-progress"
import type { Row, Scenario } from "./report/Report.ts"
import type { Progress } from "./run.ts"

const pad = (cells: ReadonlyArray<string>, widths: ReadonlyArray<number>) =>
  cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join("  ")

export const formatScenarioTable = (scenario: Scenario, rows: ReadonlyArray<Row>): string => {
  const replicas = Object.keys(scenario.replicas)
  const header = [
    "algorithm",
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "max ms",
    "errors",
    "cpu max %",
    "cpu cv %",
    ...replicas,
  ]
  const body = rows.map((row) => [
    row.algorithm,
    row.p50_ms.toFixed(1),
    row.p95_ms.toFixed(1),
    row.p99_ms.toFixed(1),
    row.max_ms.toFixed(0),
    String(row.errors),
    row.cpu_max.toFixed(0),
    row.cpu_cv.toFixed(1),
    ...replicas.map((name) => `${((row.share[name] ?? 0) * 100).toFixed(1)}%`),
  ])
  const widths = header.map((_, i) => Math.max(header[i]!.length, ...body.map((cells) => cells[i]!.length)))
  const allowances = replicas.map((name) => `${name} ${scenario.replicas[name]} cores`).join(", ")
  return [
    `\n${scenario.name}: ${scenario.description}`,
    `  ${scenario.rate_rps} req/s for ${scenario.duration_s} s per row; ${allowances}; columns after cpu cv %: share of requests`,
    pad(header, widths),
    widths.map((w) => "-".repeat(w)).join("  "),
    ...body.map((cells) => pad(cells, widths)),
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
