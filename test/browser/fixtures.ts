/**
 * A comparison report built by the comparison's own code from synthetic measurements: seeded open-loop
 * results and CPU readings go through `toRow`, `evaluateGoals` and `withEvidence`, as a real run's do,
 * so every figure (shares, percentiles with their intervals, CPU and its spread, goals and their
 * verdicts) has the unit and rounding the real report gives it.
 */
import { withEvidence } from "../../deploy/compare/evidence.ts"
import { evaluateGoals } from "../../deploy/compare/goals.ts"
import type { OpenLoopResult } from "../../deploy/compare/open-loop.ts"
import type { Report, Row, Scenario } from "../../deploy/compare/report/Report.ts"
import { type ReplicaCpu, toRow } from "../../deploy/compare/rows.ts"
import { capacityUnits, SCENARIOS } from "../../deploy/compare/scenarios.ts"

/** mulberry32: a seeded generator, so the fixture (and the screenshot) is the same on every run. */
const random = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

const REPLICAS = ["web-1", "web-2", "web-3"]
/** A full replica's allowance, as the local comparison gives each web-stress process. */
const FULL_CORES = 0.5
/** CPU one request costs, as the comparison measures it before the scenarios. */
const COST_MS = 5
const ROUNDS = 2
const ROUND_S = 10

interface Behaviour {
  readonly contender: string
  readonly reference: boolean
  /** Mean fraction of the requests each replica gets, in `REPLICAS` order. */
  readonly shares: ReadonlyArray<number>
  /** How far the split swings over time (metrics lag behind load), as a fraction. */
  readonly swing: number
  /** The tail the latencies are drawn to: `toRow` computes the row's percentiles from them. */
  readonly p99Ms: number
  /** Failed requests per round. */
  readonly errors: number
}

const contender = (
  name: string,
  shares: ReadonlyArray<number>,
  swing: number,
  p99Ms: number,
  errors = 0,
): Behaviour => ({
  contender: name,
  reference: name.startsWith("nginx") || name.startsWith("haproxy"),
  shares,
  swing,
  p99Ms,
  errors,
})

/**
 * `metrics` is left out, as `--algorithms` lets a run do, so one goal is not evaluated; adaptive's tail
 * against the best reference on the slow replica misses its goal, so every verdict shows.
 */
const behaviours: Record<string, ReadonlyArray<Behaviour>> = {
  homogeneous: [
    contender("round-robin", [1 / 3, 1 / 3, 1 / 3], 0, 14.2),
    contender("lease", [0.335, 0.333, 0.332], 0.01, 13.1),
    contender("hybrid", [0.333, 0.334, 0.333], 0.01, 12.6),
    contender("adaptive", [0.335, 0.332, 0.333], 0.015, 12.4),
    contender("nginx least_conn", [0.333, 0.333, 0.334], 0.01, 13.9),
    contender("haproxy leastconn", [0.334, 0.333, 0.333], 0.01, 13.7),
  ],
  "slow-replica": [
    contender("round-robin", [1 / 3, 1 / 3, 1 / 3], 0, 910, 19),
    contender("lease", [0.37, 0.37, 0.26], 0.01, 58),
    contender("hybrid", [0.43, 0.43, 0.14], 0.015, 33),
    contender("adaptive", [0.44, 0.44, 0.12], 0.02, 31),
    contender("nginx least_conn", [0.36, 0.36, 0.28], 0.01, 52, 1),
    contender("haproxy leastconn", [0.37, 0.37, 0.26], 0.01, 34),
  ],
}

/** Latencies with a floor and an exponential tail whose 99th percentile is about `p99Ms`. */
const latency = (p99Ms: number, next: () => number) => {
  const floor = Math.min(2, p99Ms / 4)
  return floor - ((p99Ms - floor) / Math.log(100)) * Math.log(1 - next())
}

/** One round of open-loop load as `runOpenLoop` reports it, and each replica's CPU over it. */
const measureRound = (
  rateRps: number,
  cores: Record<string, number>,
  behaviour: Behaviour,
  round: number,
  next: () => number,
): { result: OpenLoopResult; cpu: Record<string, ReplicaCpu> } => {
  const perSecond: Array<Record<string, number>> = []
  const latenciesPerSecond: Array<Array<number>> = []
  for (let second = 0; second < ROUND_S; second++) {
    const phase = round * ROUND_S + second
    const split = behaviour.shares.map(
      (share, index) =>
        share +
        behaviour.swing * Math.sin((2 * Math.PI * phase) / 8 + (index * 2 * Math.PI) / 3) +
        (next() - 0.5) * 0.02,
    )
    const total = split.reduce((a, b) => a + b, 0)
    const answered = rateRps - behaviour.errors / ROUND_S
    const window = Object.fromEntries(
      REPLICAS.map((name, index) => [name, Math.round((answered * split[index]!) / total)]),
    )
    perSecond.push(window)
    const count = Object.values(window).reduce((a, b) => a + b, 0)
    latenciesPerSecond.push(Array.from({ length: count }, () => latency(behaviour.p99Ms, next)))
  }
  const servedBy = Object.fromEntries(
    REPLICAS.map((name) => [name, perSecond.reduce((sum, window) => sum + (window[name] ?? 0), 0)]),
  )
  const cpu = Object.fromEntries(
    REPLICAS.map((name) => {
      // Percent of one core: COST_MS of CPU per request, capped just under the replica's allowance.
      const demand = ((servedBy[name]! / ROUND_S) * COST_MS) / 10
      const percent = Math.min(cores[name]! * 100 * 0.98, demand * (1 + (next() - 0.5) * 0.05))
      return [name, { percent, cores: cores[name]! }]
    }),
  )
  return {
    result: {
      requests: Math.round(rateRps * ROUND_S),
      errors: behaviour.errors,
      servedBy,
      perSecond,
      latenciesPerSecond,
    },
    cpu,
  }
}

export const makeReport = (): Report => {
  const next = random(20261125)
  const perReplicaRps = (FULL_CORES * 1000) / COST_MS
  const scenarios: Array<Scenario> = []
  const rows: Array<Row> = []
  for (const spec of SCENARIOS.filter((candidate) => candidate.name in behaviours)) {
    const cores = Object.fromEntries(REPLICAS.map((name) => [name, FULL_CORES * (spec.capacity[name] ?? 1)]))
    const rateRps = Math.round(spec.load * capacityUnits(spec, REPLICAS) * perReplicaRps)
    scenarios.push({
      name: spec.name,
      description: spec.description,
      replicas: cores,
      rate_rps: rateRps,
      duration_s: ROUND_S * ROUNDS,
    })
    for (const behaviour of behaviours[spec.name]!) {
      const rounds = Array.from({ length: ROUNDS }, (_, round) =>
        measureRound(rateRps, cores, behaviour, round, next),
      )
      rows.push(toRow(spec.name, behaviour.contender, behaviour.reference, rateRps, rounds))
    }
  }
  return withEvidence({
    generated_at: "2026-11-25T18:30:00.000Z",
    target: "local",
    machine: { cpus: 2, node: "v20.20.2", load_average: [1.21, 0.98, 0.87] },
    scenarios,
    references: {
      nginx: { used: true, detail: "nginx version: nginx/1.22.1" },
      haproxy: { used: true, detail: "HAProxy version 2.6.12-1+deb12u1 2023/12/16" },
    },
    rows,
    goals: evaluateGoals(rows),
    notes: [
      `Capacity is set with CPU quotas: ${FULL_CORES} core for a full replica & a quarter of that for web-3 in slow-replica.`,
      "The machine is shared with other jobs <load average 1.21 at the start>: compare algorithms within one report.",
      "metrics was not run (--algorithms): its goal is not evaluated.",
    ],
  })
}
