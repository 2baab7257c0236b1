/** The comparison report as one self-contained HTML page: tables, and Vega-Lite charts drawn offline as SVG. */
import { vegaBundles } from "./bundles.ts"
import { type Chart, scenarioCharts } from "./charts.ts"
import type { Report, Scenario } from "./Report.ts"
import {
  generatedAt,
  goalsTable,
  machineLine,
  referencesAdvice,
  referencesTable,
  scenarioSetup,
  scenarioTable,
  type Table,
  VERDICT_COLUMN,
} from "./table.ts"

const escapes: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
}

/** Text for element content and for quoted attribute values alike. */
export const escapeHtml = (text: string): string => text.replace(/[&<>"']/g, (char) => escapes[char]!)

// JSON inside <script> is raw text: `<` escaped as \u003c keeps `</script>` or `<!--` in a note or a
// name from ending or changing the element, and JSON.parse reads it back unchanged.
const scriptJson = (value: unknown) => JSON.stringify(value).replace(/</g, "\\u003c")

const STYLE = `
  :root { color-scheme: light; --muted: #5f6368; --line: #dadce0; --ref: #f4f5f7; }
  body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
    color: #202124; background: #fff; margin: 0 auto; padding: 24px 32px 48px; max-width: 1280px; }
  h1 { font-size: 24px; margin: 0 0 4px; }
  h2 { font-size: 19px; margin: 32px 0 8px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
  h3 { font-size: 15px; margin: 0 0 4px; font-weight: 600; }
  p.meta, p.setup { color: var(--muted); margin: 4px 0; }
  ul { margin: 4px 0; padding-left: 20px; }
  .table { overflow-x: auto; }
  table { border-collapse: collapse; margin: 8px 0 12px; font-size: 13px; font-variant-numeric: tabular-nums; }
  th, td { padding: 4px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
  th { font-weight: 600; background: #f8f9fa; white-space: nowrap; }
  td.right, th.right { text-align: right; white-space: nowrap; }
  .aside { color: var(--muted); font-size: 11px; font-weight: normal; }
  td.left, th.left { text-align: left; }
  td:first-child { white-space: nowrap; }
  tr.reference td { background: var(--ref); }
  tr.reference td:first-child::after { content: "reference"; margin-left: 6px; padding: 0 5px;
    font-size: 11px; color: var(--muted); border: 1px solid var(--line); border-radius: 3px; }
  td.pass { color: #137333; font-weight: 600; }
  td.miss { color: #c5221f; font-weight: 600; }
  td.inconclusive { color: #b06000; font-weight: 600; }
  td.unevaluated { color: var(--muted); font-style: italic; white-space: nowrap; }
  .charts { display: flex; flex-wrap: wrap; gap: 16px 28px; margin-top: 12px; }
  figure { margin: 0; }
  figure.wide { flex-basis: 100%; }
  .chart[data-rendered="failed"] { color: #c5221f; }
`

const verdictClass: Record<string, string> = {
  PASS: "pass",
  MISS: "miss",
  inconclusive: "inconclusive",
  "not evaluated": "unevaluated",
}

/**
 * A figure with its interval or share in parentheses, `3.9 (3.8–4.0)`, or a header such as
 * `p99 ms (95% CI)`: the parenthesis goes under it, small and grey, so that the table stays narrow.
 */
const renderWithAside = (text: string, pattern: RegExp) => {
  const aside = pattern.exec(text)
  return aside === null
    ? escapeHtml(text)
    : `${escapeHtml(aside[1]!)}<br><span class="aside">${escapeHtml(aside[2]!)}</span>${escapeHtml(aside[3] ?? "")}`
}
const FIGURE = /^(\S+) (\(.+\))(\*?)$/
const HEADER = /^(.+) (\(95% CI\))$/

const renderTable = (
  table: Table,
  cellClass: (column: number, text: string) => string | undefined = () => undefined,
) => {
  const header = table.header
    .map(
      (title, column) =>
        `<th class="${table.align[column] ?? "left"}">${renderWithAside(title, HEADER)}</th>`,
    )
    .join("")
  const rows = table.rows
    .map((row) => {
      const cells = row.cells
        .map((text, column) => {
          const classes = [table.align[column] ?? "left", cellClass(column, text)].filter(Boolean).join(" ")
          const content = table.align[column] === "right" ? renderWithAside(text, FIGURE) : escapeHtml(text)
          return `<td class="${classes}">${content}</td>`
        })
        .join("")
      return `<tr${row.reference ? ' class="reference"' : ""}>${cells}</tr>`
    })
    .join("\n")
  return `<div class="table"><table>\n<thead><tr>${header}</tr></thead>\n<tbody>\n${rows}\n</tbody>\n</table></div>`
}

const list = (items: ReadonlyArray<string>) =>
  `<ul>\n${items.map((item) => `<li>${escapeHtml(item)}</li>`).join("\n")}\n</ul>`

const renderChart = (chart: Chart) =>
  `<figure${chart.wide ? ' class="wide"' : ""}><h3>${escapeHtml(chart.title)}</h3>` +
  `<div class="chart" id="${escapeHtml(chart.id)}"></div></figure>`

const renderScenario = (report: Report, scenario: Scenario, charts: ReadonlyArray<Chart>, index: number) => {
  const table = scenarioTable(report, scenario)
  return `<section class="scenario" id="scenario-${index + 1}" data-scenario="${escapeHtml(scenario.name)}">
<h2>Scenario: ${escapeHtml(scenario.name)}</h2>
<p>${escapeHtml(scenario.description)}</p>
<p class="setup">${escapeHtml(scenarioSetup(scenario))}</p>
${table.rows.length === 0 ? "<p>No results for this scenario.</p>" : renderTable(table)}
<div class="charts">
${charts.map(renderChart).join("\n")}
</div>
</section>`
}

// Runs in the page: draws each chart, and marks its element so that a reader (or a test) can tell a
// chart still drawing from one that failed.
const EMBED = `
const specs = JSON.parse(document.getElementById("chart-specs").textContent);
for (const [id, spec] of Object.entries(specs)) {
  const element = document.getElementById(id);
  vegaEmbed(element, spec, { mode: "vega-lite", renderer: "svg", actions: false })
    .then(() => { element.dataset.rendered = "true"; })
    .catch((error) => {
      element.dataset.rendered = "failed";
      element.textContent = "This chart could not be drawn: " + error;
      console.error(error);
    });
}
`

export const renderHtml = (report: Report): string => {
  const chartsPerScenario = report.scenarios.map((scenario, index) => scenarioCharts(report, scenario, index))
  const specs = Object.fromEntries(chartsPerScenario.flat().map((chart) => [chart.id, chart.spec]))
  const goals = goalsTable(report)
  const references = referencesTable(report)
  const advice = referencesAdvice(report)
  const scripts = vegaBundles()
    .map((source) => `<script>${source}</script>`)
    .join("\n")
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>SwarmGuard LB comparison, ${escapeHtml(generatedAt(report))}</title>
<style>${STYLE}</style>
</head>
<body>
<header>
<h1>SwarmGuard LB: load-balancing comparison</h1>
<p class="meta">Generated ${escapeHtml(generatedAt(report))} · ${escapeHtml(machineLine(report))}</p>
</header>
<section id="notes">
<h2>Notes</h2>
${report.notes.length === 0 ? "<p>None.</p>" : list(report.notes)}
</section>
<section id="references">
<h2>Reference load balancers</h2>
${references.rows.length === 0 ? "<p>None configured.</p>" : renderTable(references)}
${advice === undefined ? "" : `<p class="advice">${escapeHtml(advice)}</p>`}
</section>
<section id="goals">
<h2>Goals</h2>
${goals.rows.length === 0 ? "<p>None set.</p>" : renderTable(goals, (column, text) => (column === VERDICT_COLUMN ? verdictClass[text] : undefined))}
</section>
${report.scenarios.map((scenario, index) => renderScenario(report, scenario, chartsPerScenario[index] ?? [], index)).join("\n")}
${scripts}
<script type="application/json" id="chart-specs">${scriptJson(specs)}</script>
<script>${EMBED}</script>
</body>
</html>
`
}
