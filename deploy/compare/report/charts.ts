/** Vega-Lite specifications of one scenario's charts, with their data inlined. */
import type { TopLevelSpec } from "vega-lite"
import type { Report, Row, Scenario } from "./Report.ts"
import { replicasOf, rowsOf } from "./table.ts"

export interface Chart {
  /** Unique in the page and the same from one report to the next, so that a reader or test can find it. */
  readonly id: string
  readonly title: string
  /** Over time, so worth the page's full width. */
  readonly wide: boolean
  readonly spec: TopLevelSpec
}

const SWARMGUARD = "SwarmGuard"
const REFERENCE = "reference"
const kind = (row: Row) => (row.reference ? REFERENCE : SWARMGUARD)
const kindColor = {
  field: "kind",
  type: "nominal",
  title: null,
  scale: { domain: [SWARMGUARD, REFERENCE], range: ["#4c78a8", "#a0a0a0"] },
} as const

const config = {
  view: { stroke: null },
  axis: { labelFontSize: 11, titleFontSize: 11, titleFontWeight: "normal" },
  legend: { labelFontSize: 11, titleFontSize: 11, orient: "top" },
} as const

// Horizontal bars: algorithm names such as `haproxy leastconn` read better on the y axis.
const algorithmAxis = (algorithms: ReadonlyArray<string>) =>
  ({ field: "algorithm", type: "nominal", sort: [...algorithms], title: null }) as const

/** p99 per algorithm as bars, with its 95 % interval as an error bar and printed at the bar's end. */
const p99Chart = (rows: ReadonlyArray<Row>, algorithms: ReadonlyArray<string>): TopLevelSpec => ({
  config,
  width: 250,
  data: {
    values: rows.map((row) => ({
      algorithm: row.algorithm,
      kind: kind(row),
      n: row.latencies,
      p50_ms: row.p50_ms,
      p95_ms: row.p95_ms,
      p99_ms: row.p99_ms,
      p99_low_ms: row.p99_ci_ms[0],
      p99_high_ms: row.p99_ci_ms[1],
      max_ms: row.max_ms,
    })),
  },
  encoding: {
    y: algorithmAxis(algorithms),
    x: { field: "p99_ms", type: "quantitative", title: "p99 latency (ms), 95% interval" },
  },
  layer: [
    {
      mark: { type: "bar" },
      encoding: {
        color: kindColor,
        tooltip: [
          { field: "algorithm" },
          { field: "n", title: "latencies" },
          { field: "p50_ms", title: "p50 ms", format: ".1f" },
          { field: "p95_ms", title: "p95 ms", format: ".1f" },
          { field: "p99_ms", title: "p99 ms", format: ".1f" },
          { field: "p99_low_ms", title: "p99 95% CI low", format: ".1f" },
          { field: "p99_high_ms", title: "p99 95% CI high", format: ".1f" },
          { field: "max_ms", title: "max ms", format: ".1f" },
        ],
      },
    },
    {
      mark: { type: "errorbar", ticks: true, color: "#202124" },
      encoding: {
        x: { field: "p99_low_ms", type: "quantitative" },
        x2: { field: "p99_high_ms" },
      },
    },
    {
      mark: { type: "text", align: "left", dx: 5, fontSize: 10 },
      encoding: {
        x: { field: "p99_high_ms", type: "quantitative" },
        text: { field: "p99_ms", type: "quantitative", format: ".1f" },
      },
    },
  ],
})

const replicaColor = (replicas: ReadonlyArray<string>) =>
  ({
    field: "replica",
    type: "nominal",
    title: "replica",
    scale: { domain: [...replicas], scheme: "tableau10" },
  }) as const

const shareChart = (
  rows: ReadonlyArray<Row>,
  algorithms: ReadonlyArray<string>,
  replicas: ReadonlyArray<string>,
): TopLevelSpec => ({
  config,
  width: 250,
  data: {
    values: rows.flatMap((row) =>
      replicas.map((replica) => ({ algorithm: row.algorithm, replica, share: row.share[replica] ?? 0 })),
    ),
  },
  mark: { type: "bar" },
  encoding: {
    y: algorithmAxis(algorithms),
    x: {
      field: "share",
      type: "quantitative",
      stack: "normalize",
      title: "share of answered requests",
      axis: { format: "%" },
    },
    color: replicaColor(replicas),
    order: { field: "replica_order", type: "quantitative" },
    tooltip: [{ field: "algorithm" }, { field: "replica" }, { field: "share", format: ".1%" }],
  },
  transform: [{ calculate: `indexof(${JSON.stringify(replicas)}, datum.replica)`, as: "replica_order" }],
})

const cpuChart = (
  rows: ReadonlyArray<Row>,
  algorithms: ReadonlyArray<string>,
  replicas: ReadonlyArray<string>,
  scenario: Scenario,
): TopLevelSpec => ({
  config,
  width: 250,
  // With an offset channel the step is one replica's bar, not one algorithm's band.
  height: { step: 8 },
  data: {
    values: rows.flatMap((row) =>
      replicas.map((replica) => {
        const cpu = row.cpu[replica] ?? 0
        // Replicas differ in allowance: a share of its own allowance is what shows one saturating.
        const cores = scenario.replicas[replica] ?? 1
        return { algorithm: row.algorithm, replica, cpu, allowance_pct: cpu / cores, cores }
      }),
    ),
  },
  layer: [
    {
      mark: { type: "bar" },
      encoding: {
        y: algorithmAxis(algorithms),
        yOffset: { field: "replica", type: "nominal", sort: [...replicas] },
        x: {
          field: "allowance_pct",
          type: "quantitative",
          title: "mean CPU, % of the replica's allowance",
          axis: { tickCount: 5 },
        },
        color: replicaColor(replicas),
        tooltip: [
          { field: "algorithm" },
          { field: "replica" },
          { field: "allowance_pct", title: "% of allowance", format: ".1f" },
          { field: "cpu", title: "% of one core", format: ".1f" },
          { field: "cores", title: "allowance (cores)" },
        ],
      },
    },
    { mark: { type: "rule", color: "#c0392b", strokeDash: [4, 3] }, encoding: { x: { datum: 100 } } },
  ],
})

const perSecondChart = (
  rows: ReadonlyArray<Row>,
  algorithms: ReadonlyArray<string>,
  replicas: ReadonlyArray<string>,
): TopLevelSpec => ({
  config,
  data: {
    values: rows.flatMap((row) =>
      row.per_second.flatMap((window, second) =>
        replicas.map((replica) => ({
          algorithm: row.algorithm,
          second,
          replica,
          requests: window[replica] ?? 0,
        })),
      ),
    ),
  },
  facet: { field: "algorithm", type: "nominal", sort: [...algorithms], title: null },
  columns: 3,
  // Shared scales, but an x axis under each cell: otherwise a short last row leaves axes under nothing.
  resolve: { axis: { x: "independent" } },
  spec: {
    width: 300,
    height: 110,
    mark: { type: "line", strokeWidth: 1.5, interpolate: "monotone" },
    encoding: {
      x: { field: "second", type: "quantitative", title: "second of the run" },
      y: { field: "requests", type: "quantitative", title: "requests/s" },
      color: replicaColor(replicas),
      tooltip: [{ field: "algorithm" }, { field: "second" }, { field: "replica" }, { field: "requests" }],
    },
  },
})

const p99OverTimeChart = (rows: ReadonlyArray<Row>, algorithms: ReadonlyArray<string>): TopLevelSpec => ({
  config,
  width: 900,
  height: 200,
  data: {
    values: rows.flatMap((row) =>
      row.p99_per_second_ms.map((p99_ms, second) => ({
        algorithm: row.algorithm,
        kind: kind(row),
        second,
        p99_ms,
      })),
    ),
  },
  mark: { type: "line", strokeWidth: 1.5 },
  encoding: {
    x: { field: "second", type: "quantitative", title: "second of the run" },
    // Logarithmic: one saturated algorithm would otherwise flatten all the others against the axis.
    y: {
      field: "p99_ms",
      type: "quantitative",
      title: "p99 latency (ms)",
      scale: { type: "log", nice: false },
      axis: { tickCount: 5 },
    },
    color: {
      field: "algorithm",
      type: "nominal",
      title: "algorithm",
      scale: { domain: [...algorithms], scheme: "tableau10" },
    },
    strokeDash: {
      field: "kind",
      type: "nominal",
      title: null,
      scale: {
        domain: [SWARMGUARD, REFERENCE],
        range: [
          [1, 0],
          [5, 3],
        ],
      },
    },
    tooltip: [
      { field: "algorithm" },
      { field: "second" },
      { field: "p99_ms", title: "p99 ms", format: ".1f" },
    ],
  },
})

/** The scenario's charts; those without data (no rows, no per-second windows) are left out. */
export const scenarioCharts = (report: Report, scenario: Scenario, index: number): ReadonlyArray<Chart> => {
  const rows = rowsOf(report, scenario)
  if (rows.length === 0) return []
  const algorithms = rows.map((row) => row.algorithm)
  const replicas = replicasOf(scenario, rows)
  const id = (name: string) => `scenario-${index + 1}-${name}`
  const charts: Array<Chart> = [
    { id: id("p99"), title: "p99 latency per algorithm", wide: false, spec: p99Chart(rows, algorithms) },
    {
      id: id("share"),
      title: "Share of requests per replica",
      wide: false,
      spec: shareChart(rows, algorithms, replicas),
    },
    {
      id: id("cpu"),
      title: "Mean CPU per replica",
      wide: false,
      spec: cpuChart(rows, algorithms, replicas, scenario),
    },
  ]
  if (rows.some((row) => row.per_second.length > 0))
    charts.push({
      id: id("per-second"),
      title: "Requests per replica per second",
      wide: true,
      spec: perSecondChart(rows, algorithms, replicas),
    })
  if (rows.some((row) => row.p99_per_second_ms.length > 0))
    charts.push({
      id: id("p99-over-time"),
      title: "p99 latency per second",
      wide: true,
      spec: p99OverTimeChart(rows, algorithms),
    })
  return charts
}
