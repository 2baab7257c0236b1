/** The comparison report as GitHub Markdown: the same tables as the HTML page, without the charts. */
import type { Report } from "./Report.ts"
import * as Tables from "./table.ts"

// GitHub renders inline HTML and splits table cells on `|`: both are escaped so that a name or note
// always shows as written, on one line.
const escapeMarkdown = (text: string) =>
  text
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/\|/g, "\\|")
    .replace(/\s*\n\s*/g, " ")

const renderTable = (table: Tables.Table) => {
  const line = (cells: ReadonlyArray<string>) => `| ${cells.join(" | ")} |`
  const rule = table.header.map((_, column) => (table.align[column] === "right" ? "---:" : "---"))
  const rows = table.rows.map((row) =>
    line(
      row.cells.map((text, column) => {
        const cell = escapeMarkdown(text)
        return column === 0 && row.reference ? `${cell} *(reference)*` : cell
      }),
    ),
  )
  return [line(table.header.map(escapeMarkdown)), line(rule), ...rows].join("\n")
}

const section = (title: string, body: string) => `## ${title}\n\n${body}\n`

export const renderMarkdown = (report: Report): string => {
  const goals = Tables.goalsTable(report)
  const references = Tables.referencesTable(report)
  const advice = Tables.referencesAdvice(report)
  const parts = [
    `# SwarmGuard LB: load-balancing comparison\n\nGenerated ${escapeMarkdown(Tables.generatedAt(report))} · ${escapeMarkdown(Tables.machineLine(report))}\n`,
    section(
      "Notes",
      report.notes.length === 0
        ? "None."
        : report.notes.map((note) => `- ${escapeMarkdown(note)}`).join("\n"),
    ),
    section(
      "Reference load balancers",
      [
        references.rows.length === 0 ? "None configured." : renderTable(references),
        ...(advice === undefined ? [] : [escapeMarkdown(advice)]),
      ].join("\n\n"),
    ),
    section("Goals", goals.rows.length === 0 ? "None set." : renderTable(goals)),
    ...report.scenarios.map((scenario) => {
      const table = Tables.scenarioTable(report, scenario)
      return section(
        `Scenario: ${escapeMarkdown(scenario.name)}`,
        [
          escapeMarkdown(scenario.description),
          `*${escapeMarkdown(Tables.scenarioSetup(scenario))}*`,
          table.rows.length === 0 ? "No results for this scenario." : renderTable(table),
        ].join("\n\n"),
      )
    }),
  ]
  return parts.join("\n")
}
