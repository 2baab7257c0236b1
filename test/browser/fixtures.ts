/**
 * A comparison report as a real run would write it: three replicas, two scenarios, SwarmGuard's
 * algorithms and two reference balancers, with per-second windows. Figures are derived from the
 * windows (shares, requests, CPU and its spread), so that they agree with each other as a run's do.
 */
import type { Goal, Report, Row, Scenario } from "../../deploy/compare/report/Report.ts"

/** mulberry32: a seeded generator, so the fixture (and the screenshot) is the same on every run. */
const random = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

const round = (value: number, digits: number) => Math.round(value * 10 ** digits) / 10 ** digits

/** CPU one request costs a replica, in percent of one core per request per second. */
const CPU_PER_RPS = 0.45

interface Behaviour {
  readonly algorithm: string
  readonly reference: boolean
  /** Mean fraction of the requests each replica gets, in the scenario's replica order. */
  readonly shares: ReadonlyArray<number>
  /** How far the split swings over time (metrics lag behind load), as a fraction. */
  readonly swing: number
  readonly p99_ms: number
  readonly errors: number
}

const scenarios: ReadonlyArray<Scenario> = [
  {
    name: "uneven-capacity",
    description:
      "One replica has half the CPU of the others: a balancer that only counts requests overloads it.",
    replicas: { "replica-1": 1, "replica-2": 1, "replica-3": 0.5 },
    rate_rps: 300,
    duration_s: 30,
  },
  {
    name: "equal-replicas",
    description:
      "Three equal replicas under a steady load: every algorithm should split the requests evenly.",
    replicas: { "replica-1": 1, "replica-2": 1, "replica-3": 1 },
    rate_rps: 400,
    duration_s: 20,
  },
]

const behaviours: Record<string, ReadonlyArray<Behaviour>> = {
  "uneven-capacity": [
    {
      algorithm: "round-robin",
      reference: false,
      shares: [1 / 3, 1 / 3, 1 / 3],
      swing: 0,
      p99_ms: 182,
      errors: 37,
    },
    { algorithm: "lease", reference: false, shares: [0.37, 0.37, 0.26], swing: 0.01, p99_ms: 38, errors: 0 },
    { algorithm: "metrics", reference: false, shares: [0.41, 0.4, 0.19], swing: 0.06, p99_ms: 46, errors: 0 },
    { algorithm: "hybrid", reference: false, shares: [0.4, 0.4, 0.2], swing: 0.015, p99_ms: 24, errors: 0 },
    {
      algorithm: "adaptive",
      reference: false,
      shares: [0.39, 0.4, 0.21],
      swing: 0.02,
      p99_ms: 27,
      errors: 0,
    },
    {
      algorithm: "nginx least_conn",
      reference: true,
      shares: [0.36, 0.36, 0.28],
      swing: 0.01,
      p99_ms: 52,
      errors: 2,
    },
    {
      algorithm: "haproxy leastconn",
      reference: true,
      shares: [0.365, 0.36, 0.275],
      swing: 0.01,
      p99_ms: 49,
      errors: 0,
    },
  ],
  "equal-replicas": [
    {
      algorithm: "round-robin",
      reference: false,
      shares: [1 / 3, 1 / 3, 1 / 3],
      swing: 0,
      p99_ms: 14.2,
      errors: 0,
    },
    {
      algorithm: "lease",
      reference: false,
      shares: [0.335, 0.333, 0.332],
      swing: 0.01,
      p99_ms: 13.1,
      errors: 0,
    },
    {
      algorithm: "metrics",
      reference: false,
      shares: [0.34, 0.33, 0.33],
      swing: 0.04,
      p99_ms: 17.8,
      errors: 0,
    },
    {
      algorithm: "hybrid",
      reference: false,
      shares: [0.333, 0.334, 0.333],
      swing: 0.01,
      p99_ms: 12.6,
      errors: 0,
    },
    {
      algorithm: "adaptive",
      reference: false,
      shares: [0.335, 0.332, 0.333],
      swing: 0.015,
      p99_ms: 13.4,
      errors: 0,
    },
    {
      algorithm: "nginx least_conn",
      reference: true,
      shares: [0.333, 0.333, 0.334],
      swing: 0.01,
      p99_ms: 13.9,
      errors: 0,
    },
    {
      algorithm: "haproxy leastconn",
      reference: true,
      shares: [0.334, 0.333, 0.333],
      swing: 0.01,
      p99_ms: 13.7,
      errors: 0,
    },
  ],
}

const makeRow = (scenario: Scenario, behaviour: Behaviour, next: () => number): Row => {
  const replicas = Object.keys(scenario.replicas)
  const per_second = Array.from({ length: scenario.duration_s }, (_, second) => {
    const split = behaviour.shares.map(
      (share, index) =>
        share +
        behaviour.swing * Math.sin((2 * Math.PI * second) / 8 + (index * 2 * Math.PI) / 3) +
        (next() - 0.5) * 0.02,
    )
    const sum = split.reduce((a, b) => a + b, 0)
    const answered = scenario.rate_rps * (1 + (next() - 0.5) * 0.04)
    return Object.fromEntries(
      replicas.map((name, index) => [name, Math.round((answered * split[index]!) / sum)]),
    )
  })
  const served = replicas.map((name) => per_second.reduce((total, window) => total + (window[name] ?? 0), 0))
  const requests = served.reduce((a, b) => a + b, 0)
  const cpu = replicas.map((name, index) => {
    const allowance = scenario.replicas[name]! * 100
    return Math.min(
      allowance * 0.98,
      (served[index]! / scenario.duration_s) * CPU_PER_RPS * (1 + (next() - 0.5) * 0.05),
    )
  })
  const ofAllowance = cpu.map((value, index) => value / scenario.replicas[replicas[index]!]!)
  const mean = ofAllowance.reduce((a, b) => a + b, 0) / ofAllowance.length
  const deviation = Math.sqrt(
    ofAllowance.reduce((total, value) => total + (value - mean) ** 2, 0) / ofAllowance.length,
  )
  const p99 = behaviour.p99_ms
  return {
    scenario: scenario.name,
    algorithm: behaviour.algorithm,
    reference: behaviour.reference,
    requests,
    errors: behaviour.errors,
    rate_rps: scenario.rate_rps,
    p50_ms: round(p99 * 0.24, 2),
    p95_ms: round(p99 * 0.68, 2),
    p99_ms: p99,
    max_ms: round(p99 * 2.7, 2),
    share: Object.fromEntries(replicas.map((name, index) => [name, round(served[index]! / requests, 4)])),
    cpu: Object.fromEntries(replicas.map((name, index) => [name, round(cpu[index]!, 1)])),
    cpu_max: round(Math.max(...ofAllowance), 1),
    cpu_cv: round((deviation / mean) * 100, 1),
    per_second,
    p99_per_second_ms: per_second.map((_, second) =>
      round(p99 * (0.85 + 0.3 * next() + behaviour.swing * 4 * Math.sin((2 * Math.PI * second) / 8)), 2),
    ),
  }
}

const find = (rows: ReadonlyArray<Row>, scenario: string, algorithm: string) =>
  rows.find((row) => row.scenario === scenario && row.algorithm === algorithm)!

const goalsFor = (rows: ReadonlyArray<Row>): ReadonlyArray<Goal> => {
  const hybrid = find(rows, "uneven-capacity", "hybrid")
  const nginx = find(rows, "uneven-capacity", "nginx least_conn")
  const lease = find(rows, "uneven-capacity", "lease")
  const latencyRatio = round(hybrid.p99_ms / nginx.p99_ms, 3)
  const halfCoreShare = lease.share["replica-3"]!
  const errors = rows
    .filter((row) => row.algorithm === "hybrid")
    .reduce((total, row) => total + row.errors, 0)
  return [
    {
      name: "hybrid p99 ÷ nginx least_conn p99 (uneven-capacity)",
      measured: latencyRatio,
      limit: 1,
      comparison: "≤",
      pass: latencyRatio <= 1,
      note: "SwarmGuard must answer at least as fast as the best reference",
    },
    {
      name: "hybrid cpu_cv (uneven-capacity), %",
      measured: hybrid.cpu_cv,
      limit: 15,
      comparison: "≤",
      pass: hybrid.cpu_cv <= 15,
      note: "replicas kept equally busy relative to their allowance",
    },
    {
      name: "lease share of replica-3 (uneven-capacity)",
      measured: halfCoreShare,
      limit: 0.22,
      comparison: "≤",
      pass: halfCoreShare <= 0.22,
      note: "the half-core replica should get at most its capacity's share (0.2) plus 10%",
    },
    {
      name: "hybrid errors, all scenarios",
      measured: errors,
      limit: 0,
      comparison: "≤",
      pass: errors <= 0,
      note: "",
    },
    {
      name: "hybrid p99 ÷ envoy p99 (uneven-capacity)",
      measured: Number.NaN,
      limit: 1,
      comparison: "≤",
      pass: undefined,
      note: "envoy is not installed",
    },
  ]
}

export const makeReport = (): Report => {
  const next = random(20261125)
  const rows = scenarios.flatMap((scenario) =>
    (behaviours[scenario.name] ?? []).map((behaviour) => makeRow(scenario, behaviour, next)),
  )
  return {
    generated_at: "2026-11-25T18:30:00.000Z",
    target: "local",
    machine: { cpus: 2, node: "v20.20.2", load_average: [1.21, 0.98, 0.87] },
    scenarios,
    references: {
      nginx: { used: true, detail: "nginx/1.22.1 (Debian), upstream with least_conn" },
      haproxy: { used: true, detail: "HAProxy 2.6.12, balance leastconn" },
      envoy: { used: false, detail: "not installed: no package in Debian bookworm" },
    },
    rows,
    goals: goalsFor(rows),
    notes: [
      "Capacity is emulated with CPU quotas: replica-3 runs with docker --cpus 0.5 & the others with 1.",
      "The machine is shared with other jobs <load average 1.21 at the start>: compare algorithms within one report.",
      "Goals against envoy are not evaluated.",
    ],
  }
}
