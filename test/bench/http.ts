/** The HTTP benchmark: every target measured once per round, side by side, then summarised against raw. */

import { ALGORITHMS } from "../../src/domain/Algorithm.ts"
import { get } from "../../src/process/http.ts"
import { treeCpuTimeMs } from "../../src/process/proc.ts"
import { printLimitCosts } from "./limits.ts"
import { type LoadOptions, type Measurement, measure, warmUp } from "./load.ts"
import { formatTable, median } from "./report.ts"
import type { Target } from "./targets.ts"

/** The bar for the data plane: with one worker, every algorithm keeps this share of raw's throughput. */
const GOAL_RATIO = 0.9
const GOAL_TARGETS = new Set<string>(ALGORITHMS)

const fmt = (value: number, digits: number) => (Number.isFinite(value) ? value.toFixed(digits) : "-")

interface Sample extends Measurement {
  /** CPU time the serving process spent per request; NaN where /proc is not available. */
  readonly cpuUsPerRequest: number
}

const sample = async (target: Target, load: LoadOptions): Promise<Sample> => {
  await warmUp(target.url, load)
  const cpuBefore = treeCpuTimeMs(target.pid)
  const m = await measure(target.url, load)
  const cpuAfter = treeCpuTimeMs(target.pid)
  const cpuUsPerRequest =
    cpuBefore === undefined || cpuAfter === undefined || m.requests === 0
      ? Number.NaN
      : ((cpuAfter - cpuBefore) * 1000) / m.requests
  return { ...m, cpuUsPerRequest }
}

const describe = (m: Sample, ratio: number | undefined) =>
  `${fmt(m.requestsPerSecond, 0).padStart(7)} req/s  p50 ${fmt(m.p50Ms, 2).padStart(6)} ms  ` +
  `p99 ${fmt(m.p99Ms, 2).padStart(6)} ms  cpu ${fmt(m.cpuUsPerRequest, 1).padStart(5)} µs/req  ` +
  `errors ${m.errors}  non-2xx ${m.non2xx}` +
  (ratio === undefined ? "" : `  ×raw ${fmt(ratio, 2)}`)

interface BalancerView {
  readonly total_requests: number
  readonly routing_decisions: Record<string, number>
  readonly fallback_decisions: number
  readonly retries: number
  readonly failures: Record<string, number>
}

const balancerView = async (target: Target): Promise<BalancerView | undefined> => {
  const answer = await get(new URL("/metrics", target.url).href)
  if (answer?.status !== 200) return undefined
  try {
    return JSON.parse(answer.body) as BalancerView
  } catch {
    return undefined
  }
}

/** What each balancer reports about itself: a check that all replicas were used and nothing failed. */
const printBalancerViews = async (targets: ReadonlyArray<Target>) => {
  // autocannon cuts the requests in flight when a run stops: the balancers count those as client_abort.
  console.log("\nBalancers' own /metrics after the run (client_abort: requests cut when a run stops):")
  for (const target of targets.filter((t) => t.balancer)) {
    const view = await balancerView(target)
    if (view === undefined) {
      console.log(`  ${target.name.padEnd(12)} /metrics did not answer with JSON`)
      continue
    }
    const decided = Object.values(view.routing_decisions).reduce((a, b) => a + b, 0)
    const split = Object.values(view.routing_decisions)
      .map((n) => `${((100 * n) / Math.max(1, decided)).toFixed(0)}%`)
      .join("/")
    const failures = Object.entries(view.failures)
      .filter(([, n]) => n > 0)
      .map(([kind, n]) => `${kind} ${n}`)
    console.log(
      `  ${target.name.padEnd(12)} ${view.total_requests} requests, split ${split}, ` +
        `fallback ${view.fallback_decisions}, retries ${view.retries}, failures ${failures.join(", ") || "0"}`,
    )
  }
}

/**
 * Raw opens every round so each later line can be compared with it; the others rotate, so no target
 * always sits right after raw (or always last) on a machine whose load drifts.
 */
const inRoundOrder = (targets: ReadonlyArray<Target>, round: number): Array<Target> => {
  const others = targets.filter((target) => target.name !== "raw")
  const shift = (round - 1) % Math.max(1, others.length)
  return [
    ...targets.filter((target) => target.name === "raw"),
    ...others.slice(shift),
    ...others.slice(0, shift),
  ]
}

/** `targets` in the order of the summary table. */
export const runHttp = async (targets: ReadonlyArray<Target>, rounds: number, load: LoadOptions) => {
  console.log(
    `\nHTTP: autocannon -c ${load.connections}, ${load.durationS} s per target after ${load.warmupS} s warm-up, ` +
      `${rounds} round(s), targets alternating within each round`,
  )
  // Every proxy first runs long enough for the JIT to settle, so round 1 does not measure a cold process.
  for (const target of targets) await warmUp(target.url, { ...load, warmupS: Math.max(5, load.warmupS) })
  const results = new Map<string, Array<Sample>>(targets.map((t) => [t.name, []]))
  const ratios = new Map<string, Array<number>>(targets.map((t) => [t.name, []]))
  for (let round = 1; round <= rounds; round++) {
    console.log(`round ${round}`)
    let raw: Sample | undefined
    for (const target of inRoundOrder(targets, round)) {
      const m = await sample(target, load)
      if (target.name === "raw") raw = m
      const ratio =
        raw === undefined || target.name === "raw" ? undefined : m.requestsPerSecond / raw.requestsPerSecond
      results.get(target.name)!.push(m)
      if (ratio !== undefined) ratios.get(target.name)!.push(ratio)
      console.log(`  ${target.name.padEnd(12)} ${describe(m, ratio)}`)
    }
  }

  const rows = targets.map((target) => {
    const ms = results.get(target.name)!
    const ratio = median(ratios.get(target.name)!)
    const goal = GOAL_TARGETS.has(target.name) ? (ratio >= GOAL_RATIO ? "PASS" : "MISS") : ""
    return [
      target.name,
      fmt(median(ms.map((m) => m.requestsPerSecond)), 0),
      fmt(median(ms.map((m) => m.p50Ms)), 2),
      fmt(median(ms.map((m) => m.p99Ms)), 2),
      fmt(median(ms.map((m) => m.cpuUsPerRequest)), 1),
      String(ms.reduce((sum, m) => sum + m.errors, 0)),
      String(ms.reduce((sum, m) => sum + m.non2xx, 0)),
      target.name === "raw" ? "1.00" : fmt(ratio, 2),
      goal,
    ]
  })
  console.log(
    `\nSummary (medians over ${rounds} round(s); ×raw = median of per-round ratios; errors and non-2xx summed)`,
  )
  console.log(
    formatTable(
      [
        "target",
        "req/s",
        "p50 ms",
        "p99 ms",
        "cpu µs/req",
        "errors",
        "non-2xx",
        "×raw",
        `goal ≥${GOAL_RATIO}`,
      ],
      rows,
    ),
  )
  console.log(
    "cpu µs/req: CPU time (user + system) per request of the process serving the target (the proxy; " +
      "the backends for direct). Steadier than req/s on a shared machine, but it drops as req/s rises.",
  )
  for (const name of GOAL_TARGETS) {
    const measured = ratios.get(name) ?? []
    if (measured.length === 0) {
      console.log(`goal: ${name} ≥ ${GOAL_RATIO} × raw: not evaluated (${name} not run)`)
      continue
    }
    const ratio = median(measured)
    console.log(
      `goal: ${name} ≥ ${GOAL_RATIO} × raw: ${ratio >= GOAL_RATIO ? "PASS" : "MISS"} (${fmt(ratio, 2)})`,
    )
  }
  printLimitCosts(results)
  await printBalancerViews(targets)
}
