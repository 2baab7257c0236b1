/** The comparison itself: on each scenario, every contender in turn under the same open-loop load. */
import { availableParallelism, loadavg } from "node:os"
import { Pool } from "undici"
import { evaluateGoals } from "./goals.ts"
import { type OpenLoopResult, runOpenLoop } from "./open-loop.ts"
import type { Report, Row, Scenario } from "./report/Report.ts"
import { type ReplicaCpu, toRow } from "./rows.ts"
import { capacityUnits, SCENARIOS, type ScenarioSpec } from "./scenarios.ts"
import type { ComparisonTarget, CpuWindow } from "./target.ts"

export interface CompareOptions {
  /** Each contender runs this many times per scenario, the contenders taking turns, and its rounds are pooled. */
  readonly rounds: number
  /** Seconds measured per round. */
  readonly durationS: number
  readonly warmupS: number
  readonly scenarios: ReadonlyArray<string>
}

export interface Progress {
  readonly start: (total: number) => void
  readonly step: (label: string) => void
  /** A finished scenario's rows, for a table on the console. */
  readonly scenarioDone: (scenario: Scenario, rows: ReadonlyArray<Row>) => void
  readonly stop: () => void
}

/** Monte Carlo points per request: about 5 ms of CPU here, so a half-core replica serves ~100 req/s. */
const ITERATIONS = 200_000
export const REQUEST_PATH = `/compute/pi?iterations=${ITERATIONS}`
/** A user gives up after this long; what is left unanswered is an error. */
const TIMEOUT_MS = 10_000

/** Requests that warm a contender's routing path up, and how many are in flight at once. */
const WARM_UP_REQUESTS = 2_000
const WARM_UP_CONCURRENCY = 16

/**
 * A burst of cheap requests (`/health`, answered by the replicas at almost no CPU) before a
 * contender is measured: a balancer that has just started (or restarted, on Swarm) runs its routing
 * code unoptimised for its first few thousand requests, which the run would otherwise count against
 * it. NGINX and HAProxy get the same burst.
 */
const warmUp = async (origin: string) => {
  const pool = new Pool(origin, { connections: WARM_UP_CONCURRENCY })
  let left = WARM_UP_REQUESTS
  const worker = async () => {
    while (left-- > 0) {
      const response = await pool.request({ path: "/health", method: "GET" }).catch(() => undefined)
      await response?.body.dump()
    }
  }
  await Promise.all(Array.from({ length: WARM_UP_CONCURRENCY }, worker))
  await pool.destroy()
}

/** One round of one contender: the open-loop run and each replica's CPU over its counted part. */
const measure = async (
  target: ComparisonTarget,
  scenario: ScenarioSpec,
  origin: string,
  rateRps: number,
  options: CompareOptions,
): Promise<{ result: OpenLoopResult; cpu: Record<string, ReplicaCpu> }> => {
  await target.settle()
  const seconds = Math.ceil(options.warmupS + options.durationS)
  const stopStress = scenario.stress
    ? await target.stress(scenario.stress.replica, scenario.stress.finalCpuPercent / seconds, seconds)
    : async () => {}
  let window: Promise<CpuWindow> | undefined
  let cpuPercent: Promise<Record<string, number>> | undefined
  const result = await runOpenLoop({
    origin,
    path: REQUEST_PATH,
    rateRps,
    durationS: options.durationS,
    warmupS: options.warmupS,
    timeoutMs: TIMEOUT_MS,
    onPhase: (phase) => {
      if (phase === "measuring") window = target.cpuWindow()
      else cpuPercent = window!.then((w) => w.stop())
    },
  })
  await stopStress()
  const percent = await cpuPercent!
  const cpu: Record<string, ReplicaCpu> = Object.fromEntries(
    target.replicas.map((name) => [name, { percent: percent[name] ?? 0, cores: target.cores(name) }]),
  )
  return { result, cpu }
}

const rotate = <A>(items: ReadonlyArray<A>, by: number): Array<A> => {
  const shift = by % Math.max(1, items.length)
  return [...items.slice(shift), ...items.slice(0, shift)]
}

export const compare = async (
  target: ComparisonTarget,
  options: CompareOptions,
  progress: Progress,
): Promise<Report> => {
  const scenarios = SCENARIOS.filter((scenario) => options.scenarios.includes(scenario.name))
  for (const name of target.replicas) await target.setCapacity(name, 1)
  const costMs = await target.costMs(REQUEST_PATH)
  const perReplicaRps = (target.cores(target.replicas[0]!) * 1000) / costMs

  const rows: Array<Row> = []
  const described: Array<Scenario> = []
  progress.start(scenarios.length * target.contenders.length * options.rounds)
  for (const scenario of scenarios) {
    for (const name of target.replicas) await target.setCapacity(name, scenario.capacity[name] ?? 1)
    const rateRps = Math.round(scenario.load * capacityUnits(scenario, target.replicas) * perReplicaRps)
    const summary: Scenario = {
      name: scenario.name,
      description: scenario.description,
      replicas: Object.fromEntries(target.replicas.map((name) => [name, target.cores(name)])),
      rate_rps: rateRps,
      duration_s: options.durationS * options.rounds,
    }
    described.push(summary)
    const measured = new Map<string, Array<Awaited<ReturnType<typeof measure>>>>()
    for (let round = 0; round < options.rounds; round++) {
      // A different contender goes first each round, so none always follows the same one.
      const order = rotate(target.contenders, round)
      for (const contender of order) {
        progress.step(`${scenario.name} · ${contender.name} (round ${round + 1}/${options.rounds})`)
        const origin = await target.use(contender)
        await warmUp(origin)
        const runs = measured.get(contender.name) ?? []
        runs.push(await measure(target, scenario, origin, rateRps, options))
        measured.set(contender.name, runs)
      }
    }
    const scenarioRows = target.contenders.map((contender) =>
      toRow(scenario.name, contender.name, contender.reference, rateRps, measured.get(contender.name)!),
    )
    rows.push(...scenarioRows)
    progress.scenarioDone(summary, scenarioRows)
  }
  progress.stop()

  return {
    generated_at: new Date().toISOString(),
    target: target.kind,
    machine: { cpus: availableParallelism(), node: process.version, load_average: loadavg() },
    scenarios: described,
    references: target.references,
    rows,
    goals: evaluateGoals(rows),
    notes: [
      ...target.notes,
      `Each request is GET ${REQUEST_PATH}, about ${costMs.toFixed(1)} ms of CPU here ` +
        `(${perReplicaRps.toFixed(0)} req/s for a full replica).`,
      `Open-loop load: a fixed arrival rate, latency counted from each request's due time; ` +
        `per row, ${options.rounds} rounds of ${WARM_UP_REQUESTS} /health requests, ${options.warmupS} s of ` +
        `warm-up at the rate and ${options.durationS} s measured, ` +
        "the contenders taking turns, pooled; " +
        `requests unanswered after ${TIMEOUT_MS / 1000} s count as errors.`,
    ],
  }
}
