// The comparison's CPU spread keeps one unit from measurement to goal: cpu_cv is a percentage in the
// row, in the goal ("≤ 15 %"), on the console and in the report's tables.
import { describe, expect, it } from "vitest"
import { formatScenarioTable } from "../../deploy/compare/console.ts"
import { evaluateGoals } from "../../deploy/compare/goals.ts"
import type { OpenLoopResult } from "../../deploy/compare/open-loop.ts"
import { renderMarkdown } from "../../deploy/compare/report/markdown.ts"
import type { Report, Row, Scenario } from "../../deploy/compare/report/Report.ts"
import { scenarioTable } from "../../deploy/compare/report/table.ts"
import { toRow } from "../../deploy/compare/rows.ts"

const CORES = 0.5
const scenario: Scenario = {
  name: "homogeneous",
  description: "three equal replicas",
  replicas: { "web-1": CORES, "web-2": CORES, "web-3": CORES },
  rate_rps: 30,
  duration_s: 1,
}

const result: OpenLoopResult = {
  requests: 30,
  errors: 0,
  servedBy: { "web-1": 10, "web-2": 10, "web-3": 10 },
  perSecond: [{ "web-1": 10, "web-2": 10, "web-3": 10 }],
  latenciesPerSecond: [Array.from({ length: 30 }, (_, i) => 5 + i / 10)],
}

/** A `lease` row whose replicas ran at these percents of their own allowance. */
const rowAt = (ofAllowance: ReadonlyArray<number>): Row => {
  const cpu = Object.fromEntries(
    Object.keys(scenario.replicas).map((name, i) => [
      name,
      { percent: ofAllowance[i]! * CORES, cores: CORES },
    ]),
  )
  return toRow(scenario.name, "lease", false, scenario.rate_rps, [{ result, cpu }])
}

const cvGoal = (row: Row) => evaluateGoals([row]).find((goal) => goal.name.includes("lease CPU coefficient"))!

describe("cpu_cv", () => {
  it("is the spread of CPU over its mean in percent, and the goal compares it with 15 %", () => {
    // Standard deviation 8.165 over a mean of 50: 16.3 %.
    const spread = rowAt([40, 50, 60])
    expect(spread.cpu_cv).toBe(16.3)
    expect(cvGoal(spread)).toMatchObject({ measured: 16.3, limit: 15, comparison: "≤", verdict: "MISS" })
    const even = rowAt([45, 50, 55])
    expect(even.cpu_cv).toBe(8.2)
    expect(cvGoal(even)).toMatchObject({ measured: 8.2, verdict: "PASS" })
  })

  it("is printed as that percentage under a % header, on the console and in the report", () => {
    const row = rowAt([40, 50, 60])
    const report = {
      scenarios: [scenario],
      rows: [row],
      references: {},
      goals: [],
      notes: [],
    } as unknown as Report
    const table = scenarioTable(report, scenario)
    expect(table.rows[0]!.cells[table.header.indexOf("cpu cv %")]).toBe("16.3")
    expect(JSON.parse(JSON.stringify(row)).cpu_cv).toBe(16.3)

    const markdown = renderMarkdown({
      ...report,
      generated_at: "2026-12-02T18:00:00.000Z",
      target: "local",
      machine: { cpus: 2, node: "v20", load_average: [0, 0, 0] },
    })
    const markdownLines = markdown.split("\n").filter((line) => line.startsWith("| "))
    const markdownHeader = markdownLines[0]!.split(" | ")
    const markdownRow = markdownLines[2]!.split(" | ")
    expect(markdownRow[markdownHeader.indexOf("cpu cv %")]).toBe("16.3")

    const lines = formatScenarioTable(scenario, [row]).split("\n")
    const header = lines.findIndex((line) => line.startsWith("algorithm"))
    const column = lines[header]!.split(/\s{2,}/).indexOf("cpu cv %")
    expect(column).toBeGreaterThan(0)
    expect(lines[header + 2]!.trim().split(/\s{2,}/)[column]).toBe("16.3")
  })
})
