/**
 * The comparison's rows and goals: raw data a reader can recompute the figures from, goals judged on
 * their intervals, and what is said when a goal cannot be evaluated.
 */
import { describe, expect, it } from "@effect/vitest"
import { formatReferences } from "../../deploy/compare/console.ts"
import { firstRoundCheck, withEvidence } from "../../deploy/compare/evidence.ts"
import { evaluateGoals } from "../../deploy/compare/goals.ts"
import type { OpenLoopResult } from "../../deploy/compare/open-loop.ts"
import { renderMarkdown } from "../../deploy/compare/report/markdown.ts"
import type { Goal, Report, Row, Scenario, ScenarioChange } from "../../deploy/compare/report/Report.ts"
import { scenarioTable } from "../../deploy/compare/report/table.ts"
import { toRow } from "../../deploy/compare/rows.ts"
import { percentileInterval } from "../../deploy/compare/stats/bootstrap.ts"
import { decodeHistogram, latencyHistogram } from "../../deploy/compare/stats/histogram.ts"
import { seededRandom } from "../../deploy/compare/stats/random.ts"
import { latencyOf } from "../../deploy/compare/stats/row-bootstrap.ts"

const REPLICAS = ["web-1", "web-2", "web-3"]
const SECONDS = 5
const RATE = 200

interface Behaviour {
  /** Scale of the latencies' exponential tail, ms: the p99 is about 2 + 4.6 × this. */
  readonly tailMs: number
  readonly errorsPerRound?: number
  readonly rounds?: number
  /** web-3's share of each second, given the round and the second. */
  readonly web3Share?: (round: number, second: number) => number
  /** Multiplies the first round's latencies: a round measured cold. */
  readonly firstRoundFactor?: number
}

let seed = 1

/** A row as the comparison builds one, from seeded open-loop rounds. */
const rowOf = (scenario: string, algorithm: string, behaviour: Behaviour, change?: ScenarioChange): Row => {
  const random = seededRandom(seed++)
  const errors = behaviour.errorsPerRound ?? 0
  const rounds = Array.from({ length: behaviour.rounds ?? 3 }, (_, round) => {
    const perSecond: Array<Record<string, number>> = []
    const latenciesPerSecond: Array<Array<number>> = []
    const factor = round === 0 ? (behaviour.firstRoundFactor ?? 1) : 1
    for (let second = 0; second < SECONDS; second++) {
      const answered = RATE - errors / SECONDS
      const web3 = Math.round(answered * (behaviour.web3Share?.(round, second) ?? 1 / 3))
      const others = Math.round((answered - web3) / 2)
      perSecond.push({ "web-1": others, "web-2": others, "web-3": web3 })
      latenciesPerSecond.push(
        Array.from(
          { length: web3 + 2 * others },
          () => factor * (2 - behaviour.tailMs * Math.log(1 - random())),
        ),
      )
    }
    const result: OpenLoopResult = {
      requests: RATE * SECONDS,
      errors,
      servedBy: Object.fromEntries(
        REPLICAS.map((name) => [name, perSecond.reduce((sum, window) => sum + window[name]!, 0)]),
      ),
      perSecond,
      latenciesPerSecond,
    }
    const cpu = Object.fromEntries(REPLICAS.map((name) => [name, { percent: 30, cores: 0.5 }]))
    return { result, cpu }
  })
  return toRow(scenario, algorithm, algorithm.includes(" "), RATE, rounds, change)
}

const goalNamed = (goals: ReadonlyArray<Goal>, name: string, limit?: number) =>
  goals.find((goal) => goal.name === name && (limit === undefined || goal.limit === limit))!

const scenarioOf = (name: string, change?: ScenarioChange): Scenario => ({
  name,
  description: name,
  replicas: { "web-1": 0.5, "web-2": 0.5, "web-3": 0.5 },
  rate_rps: RATE,
  duration_s: SECONDS * 3,
  ...(change === undefined ? {} : { change }),
})

describe("a row's raw data", () => {
  const row = rowOf("slow-replica", "adaptive", { tailMs: 10, errorsPerRound: 4 })
  const fromJson: Row = JSON.parse(JSON.stringify(row))

  it("keeps each round's requests, errors, windows and p99", () => {
    expect(fromJson.rounds).toHaveLength(3)
    for (const round of fromJson.rounds) {
      expect(round.requests).toBe(RATE * SECONDS)
      expect(round.errors).toBe(4)
      expect(round.per_second).toHaveLength(SECONDS)
    }
    expect(fromJson.p99_per_round_ms).toEqual(fromJson.rounds.map((round) => round.p99_ms))
    expect(fromJson.latencies).toBe(fromJson.rounds.reduce((sum, round) => sum + round.latencies, 0))
    expect(fromJson.per_second).toEqual(fromJson.rounds.flatMap((round) => round.per_second))
  })

  it("reproduces its percentiles from the rounds' histograms, to their precision", () => {
    const pooled = latencyHistogram([])
    for (const round of fromJson.rounds) {
      const histogram = decodeHistogram(round.histogram)
      expect(histogram.totalCount).toBe(round.latencies)
      pooled.add(histogram)
    }
    for (const [percentile, figure] of [
      [50, fromJson.p50_ms],
      [95, fromJson.p95_ms],
      [99, fromJson.p99_ms],
    ] as const) {
      const decoded = pooled.getValueAtPercentile(percentile) / 1000
      // Three significant digits, and the row's rounding to 0.01 ms.
      expect(Math.abs(decoded - figure)).toBeLessThanOrEqual(figure * 1e-3 + 0.005)
    }
  })

  it("carries intervals that hold the point estimates, and the same ones once read back from JSON", () => {
    for (const [point, [low, high]] of [
      [row.p50_ms, row.p50_ci_ms],
      [row.p95_ms, row.p95_ci_ms],
      [row.p99_ms, row.p99_ci_ms],
    ] as const) {
      expect(low).toBeLessThanOrEqual(point)
      expect(high).toBeGreaterThanOrEqual(point)
    }
    const recomputed = percentileInterval(latencyOf(fromJson).p99.replicates).map(
      (ms) => Math.round(ms * 100) / 100,
    )
    expect(recomputed).toEqual([...row.p99_ci_ms])
    expect(row.error_share).toBeCloseTo(4 / (RATE * SECONDS), 10)
    expect(row.error_share_ci[0]).toBeLessThanOrEqual(row.error_share)
  })
})

describe("goals on intervals", () => {
  const references = (scenario: string, tailMs: number) => [
    rowOf(scenario, "nginx least_conn", { tailMs: tailMs * 1.3 }),
    rowOf(scenario, "haproxy leastconn", { tailMs }),
  ]

  it("pass, miss or stay inconclusive by where the whole ratio interval lies", () => {
    const rows = [
      rowOf("slow-replica", "adaptive", { tailMs: 8 }),
      rowOf("slow-replica", "round-robin", { tailMs: 60 }),
      ...references("slow-replica", 20),
      rowOf("homogeneous", "adaptive", { tailMs: 17 }),
      ...references("homogeneous", 20),
      rowOf("heavy-tail", "adaptive", { tailMs: 40 }),
      ...references("heavy-tail", 20),
    ]
    const goals = evaluateGoals(rows)
    expect(goalNamed(goals, "slow-replica: adaptive p99 ÷ best reference p99", 0.8).verdict).toBe("PASS")
    expect(goalNamed(goals, "slow-replica: adaptive p99 ÷ round-robin p99").verdict).toBe("PASS")
    const close = goalNamed(goals, "homogeneous: adaptive p99 ÷ best reference p99")
    expect(close.interval![0]).toBeLessThan(1.1)
    expect(close.interval![1]).toBeGreaterThan(0.8)
    const heavy = goalNamed(goals, "heavy-tail: adaptive p99 ÷ best reference p99", 1.1)
    expect(heavy.verdict).toBe("MISS")
    expect(heavy.interval![0]).toBeGreaterThan(1.1)
    // The best reference is haproxy, whose tail is shorter; the note says so.
    expect(heavy.note).toContain("best reference haproxy leastconn")
  })

  it("calls a ratio whose interval straddles the target inconclusive", () => {
    const rows = [rowOf("noisy-neighbour", "adaptive", { tailMs: 16 }), ...references("noisy-neighbour", 20)]
    const goal = goalNamed(evaluateGoals(rows), "noisy-neighbour: adaptive p99 ÷ best reference p99", 0.8)
    expect(goal.interval![0]).toBeLessThan(0.8)
    expect(goal.interval![1]).toBeGreaterThan(0.8)
    expect(goal.verdict).toBe("inconclusive")
  })

  it("are not evaluated without a reference, and say how to install them", () => {
    const goals = evaluateGoals([rowOf("slow-replica", "adaptive", { tailMs: 8 })])
    const goal = goalNamed(goals, "slow-replica: adaptive p99 ÷ best reference p99", 1.1)
    expect(goal).toMatchObject({ verdict: "not evaluated", interval: null })
    expect(goal.note).toBe("no reference ran (apt-get install nginx-light haproxy)")
    expect(goalNamed(goals, "sinkhole: adaptive error share ÷ best reference error share").note).toBe(
      "sinkhole not run",
    )
  })

  it("count adaptive's errors everywhere but in the sinkhole, and compare error shares there", () => {
    const rows = [
      rowOf("homogeneous", "adaptive", { tailMs: 8, errorsPerRound: 2 }),
      rowOf("sinkhole", "adaptive", { tailMs: 8, errorsPerRound: 20 }),
      rowOf("sinkhole", "nginx least_conn", { tailMs: 8, errorsPerRound: 120 }),
      rowOf("sinkhole", "haproxy leastconn", { tailMs: 8, errorsPerRound: 100 }),
    ]
    const goals = evaluateGoals(rows)
    expect(goalNamed(goals, "homogeneous: adaptive errors")).toMatchObject({ measured: 6, verdict: "MISS" })
    expect(goals.some((goal) => goal.name === "sinkhole: adaptive errors")).toBe(false)
    const share = goalNamed(goals, "sinkhole: adaptive error share ÷ best reference error share")
    expect(share.measured).toBeCloseTo(0.2, 3)
    expect(share.verdict).toBe("PASS")
    expect(share.note).toContain("haproxy leastconn")
  })

  it("compare shift times with the best reference's when the scenario says what changes", () => {
    const change: ScenarioChange = { at_s: 2, replica: "web-3", fair_share_after: 0.2 }
    const shiftedAfter = (seconds: number) => (_round: number, second: number) =>
      second >= change.at_s + seconds ? 0.1 : 1 / 3
    const rows = [
      rowOf("degradation", "adaptive", { tailMs: 8, web3Share: shiftedAfter(0) }, change),
      rowOf("degradation", "nginx least_conn", { tailMs: 8, web3Share: shiftedAfter(2) }, change),
      rowOf("degradation", "haproxy leastconn", { tailMs: 8, web3Share: shiftedAfter(1) }, change),
    ]
    expect(rows[0]!.shift).toMatchObject({ median_s: 0, per_round_s: [0, 0, 0], unshifted_rounds: 0 })
    const name = "degradation: adaptive shift time − best reference shift time, s"
    const goal = goalNamed(evaluateGoals(rows, [scenarioOf("degradation", change)]), name)
    expect(goal).toMatchObject({ measured: -1, interval: [-1, -1], verdict: "PASS" })
    expect(goalNamed(evaluateGoals(rows), name).verdict).toBe("not evaluated")
  })

  it("get shift times onto rows built without the change, once the report names it", () => {
    const change: ScenarioChange = { at_s: 1, replica: "web-3", fair_share_after: 0.2 }
    const rows = [
      rowOf("degradation", "adaptive", {
        tailMs: 8,
        web3Share: (_round, second) => (second >= 2 ? 0.1 : 0.3),
      }),
      rowOf("degradation", "haproxy leastconn", { tailMs: 8, web3Share: () => 0.3 }),
    ]
    expect(rows[0]!.shift).toBeUndefined()
    const report = withEvidence({
      generated_at: "2026-12-02T18:00:00.000Z",
      target: "local",
      machine: { cpus: 2, node: "v20", load_average: [0, 0, 0] },
      scenarios: [scenarioOf("degradation", change)],
      references: {},
      rows,
      goals: evaluateGoals(rows),
      notes: [],
    })
    expect(report.rows[0]!.shift).toMatchObject({ median_s: 1, unshifted_rounds: 0 })
    // haproxy never shifts: the rest of the round, 4 s, flagged.
    expect(report.rows[1]!.shift).toMatchObject({ median_s: 4, unshifted_rounds: 3 })
    const goal = goalNamed(report.goals, "degradation: adaptive shift time − best reference shift time, s")
    expect(goal).toMatchObject({ measured: -3, verdict: "PASS" })
  })

  it("compare adaptive's p99 with two balancers against its own in slow-replica", () => {
    const rows = [
      rowOf("slow-replica", "adaptive", { tailMs: 10 }),
      rowOf("two-balancers", "adaptive", { tailMs: 30 }),
    ]
    const goal = goalNamed(evaluateGoals(rows), "two-balancers: adaptive p99 ÷ adaptive p99 in slow-replica")
    expect(goal.limit).toBe(1.2)
    expect(goal.verdict).toBe("MISS")
  })

  it("keep report.json readable: a point, an interval or null, the limit, the comparison, a verdict, a note", () => {
    const rows = [rowOf("slow-replica", "adaptive", { tailMs: 8 }), ...references("slow-replica", 20)]
    for (const goal of JSON.parse(JSON.stringify(evaluateGoals(rows)))) {
      expect(Object.keys(goal)).toEqual([
        "name",
        "measured",
        "interval",
        "limit",
        "comparison",
        "verdict",
        "note",
      ])
      expect(["PASS", "MISS", "inconclusive", "not evaluated"]).toContain(goal.verdict)
    }
  })
})

describe("the first measured round", () => {
  const reportOf = (rows: ReadonlyArray<Row>): Report => ({
    generated_at: "2026-12-02T18:00:00.000Z",
    target: "local",
    machine: { cpus: 2, node: "v20", load_average: [0, 0, 0] },
    scenarios: [scenarioOf("homogeneous")],
    references: {},
    rows,
    goals: [],
    notes: [],
  })

  it("is flagged when its p99 is over twice the median of its contender's other rounds", () => {
    const cold = rowOf("homogeneous", "round-robin", { tailMs: 10, firstRoundFactor: 3 })
    const check = firstRoundCheck([cold, rowOf("homogeneous", "adaptive", { tailMs: 10 })])!
    expect(check).toMatchObject({ scenario: "homogeneous", algorithm: "round-robin", outlier: true })
    expect(check.p99_ms).toBe(cold.p99_per_round_ms[0])
    const report = withEvidence(reportOf([cold]))
    expect(report.first_round?.outlier).toBe(true)
    expect(report.notes.at(-1)).toMatch(
      /^Warning: the run's first measured round \(round-robin in homogeneous\)/,
    )
  })

  it("is not flagged when warm, and not checked with a single round", () => {
    expect(firstRoundCheck([rowOf("homogeneous", "round-robin", { tailMs: 10 })])!.outlier).toBe(false)
    expect(firstRoundCheck([rowOf("homogeneous", "round-robin", { tailMs: 10, rounds: 1 })])).toBeUndefined()
  })

  it("comes with notes on the bootstrap and on the histograms' encoding", () => {
    const notes = withEvidence(reportOf([rowOf("homogeneous", "adaptive", { tailMs: 10 })])).notes.join("\n")
    expect(notes).toContain("two-level (hierarchical) percentile bootstrap")
    expect(notes).toContain("decodeFromCompressedBase64")
  })
})

describe("missing references", () => {
  it("are named with how to install them, in the report and on the console", () => {
    const report: Report = {
      generated_at: "2026-12-02T18:00:00.000Z",
      target: "local",
      machine: { cpus: 2, node: "v20", load_average: [0, 0, 0] },
      scenarios: [],
      references: {
        nginx: { used: true, detail: "nginx version: nginx/1.22.1" },
        haproxy: { used: false, detail: "not installed" },
      },
      rows: [],
      goals: [],
      notes: [],
    }
    expect(renderMarkdown(report)).toContain("apt-get install nginx-light haproxy")
    const console = formatReferences(report).split("\n")
    expect(console[0]).toBe("References:")
    expect(console.at(-1)).toContain("apt-get install nginx-light haproxy")
    expect(formatReferences({ ...report, references: { nginx: report.references.nginx! } })).not.toContain(
      "apt-get",
    )
  })
})

describe("the scenario table", () => {
  it("shows each percentile with its interval, the sample size, and shift time where a replica changes", () => {
    const change: ScenarioChange = { at_s: 2, replica: "web-3", fair_share_after: 0.2 }
    const row = rowOf("degradation", "adaptive", { tailMs: 8, web3Share: () => 0.1 }, change)
    const scenario = scenarioOf("degradation", change)
    const table = scenarioTable({ scenarios: [scenario], rows: [row] } as unknown as Report, scenario)
    const cell = (header: string) => table.rows[0]!.cells[table.header.indexOf(header)]
    expect(cell("n")).toBe(row.latencies.toLocaleString("en-US"))
    expect(cell("p99 ms (95% CI)")).toMatch(/^[\d,.]+ \([\d,.]+–[\d,.]+\)$/)
    expect(cell("shift s (95% CI)")).toBe("0.0 (0.0–0.0)")
  })
})
