/** `npm run bench:agent`: the monitoring agent's CPU, memory and sample age with 1, 10 and 50 containers. */
import { execFileSync } from "node:child_process"
import { mkdirSync } from "node:fs"
import { availableParallelism, loadavg } from "node:os"
import { fileURLToPath } from "node:url"
import { stopAll, stopChildrenOnExit } from "../../src/process/children.ts"
import { growTo, IMAGE, othersRunning, removeAll, removeAllOnExit } from "./agent-containers.ts"
import { type AgentBenchOptions, parseAgentOptions } from "./agent-options.ts"
import { type AgentRun, measureAgentRun } from "./agent-window.ts"
import { formatTable, median } from "./report.ts"

const GOAL_CPU_PERCENT = 5
const GOAL_CPU_AT = 50
const GOAL_AGE_MS = 1_500
/** Agent start (tsx compiles), the warm-up's wait for every container and a stop, per run; generous. */
const RUN_OVERHEAD_S = 60

const ensureDockerd = fileURLToPath(new URL("../../deploy/ensure-dockerd.sh", import.meta.url))
const started = performance.now()

const loadAverage = () =>
  loadavg()
    .map((n) => n.toFixed(2))
    .join(" ")

const fmt = (value: number, digits: number) => (Number.isFinite(value) ? value.toFixed(digits) : "-")

const quantile = (values: ReadonlyArray<number>, q: number): number => {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!
}

/** How long the containers may live: the whole run's bound plus margin, so only a lost run outlives them. */
const lifetimeS = (options: AgentBenchOptions) =>
  options.counts.length *
    options.rounds *
    (options.warmupS + options.quietS + options.windowS + RUN_OVERHEAD_S) +
  300

interface Row {
  readonly cpu: number
  readonly quietCpu: number
  readonly dockerdCpu: number
  readonly ageP50: number
  readonly ageP95: number
  readonly ageMax: number
  readonly healthP95: number
  readonly healthMax: number
  readonly rssMiB: number
}

const rowOf = (run: AgentRun): Row => ({
  cpu: run.cpuPercent,
  quietCpu: run.quietCpuPercent,
  dockerdCpu: run.dockerdCpuPercent,
  ageP50: quantile(run.ages, 0.5),
  ageP95: quantile(run.ages, 0.95),
  ageMax: quantile(run.ages, 1),
  healthP95: quantile(run.healthAges, 0.95),
  healthMax: quantile(run.healthAges, 1),
  rssMiB: run.rssMiB,
})

const describeRun = (count: number, round: number, run: AgentRun, row: Row) =>
  `  ${String(count).padStart(3)} containers, round ${round}: cpu ${fmt(row.cpu, 2)}% ` +
  `(quiet ${fmt(row.quietCpu, 2)}%), dockerd ${fmt(row.dockerdCpu, 1)}%, ` +
  `age p50/p95/max ${fmt(row.ageP50, 0)}/${fmt(row.ageP95, 0)}/${fmt(row.ageMax, 0)} ms, ` +
  `health max ${fmt(row.healthMax, 0)} ms, rss ${fmt(row.rssMiB, 1)} MiB, ` +
  `listed ${Number.isFinite(run.fewestOurs) ? run.fewestOurs : 0}-${count} of ours ` +
  `(${run.mostReported} in all), ${run.polls} polls, ${run.failedPolls} failed`

const medianOf = (rows: ReadonlyArray<Row>, key: keyof Row) => median(rows.map((row) => row[key]))

const summaryRow = (count: number, rows: ReadonlyArray<Row>): Array<string> => {
  const cpu = medianOf(rows, "cpu")
  const ageMax = medianOf(rows, "ageMax")
  return [
    String(count),
    fmt(cpu, 2),
    fmt(medianOf(rows, "quietCpu"), 2),
    fmt(medianOf(rows, "dockerdCpu"), 1),
    fmt(medianOf(rows, "ageP50"), 0),
    fmt(medianOf(rows, "ageP95"), 0),
    fmt(ageMax, 0),
    fmt(medianOf(rows, "healthP95"), 0),
    fmt(medianOf(rows, "healthMax"), 0),
    fmt(medianOf(rows, "rssMiB"), 1),
    count === GOAL_CPU_AT ? (cpu <= GOAL_CPU_PERCENT ? "PASS" : "MISS") : "",
    ageMax <= GOAL_AGE_MS ? "PASS" : "MISS",
  ]
}

const printSummary = (options: AgentBenchOptions, results: ReadonlyMap<number, ReadonlyArray<Row>>) => {
  const medians = options.rounds > 1 ? `medians over ${options.rounds} rounds` : "1 round"
  console.log(`\nSummary (${medians}; cpu = percent of one core; ages in ms)`)
  const header = ["containers", "cpu %", "quiet cpu %", "dockerd %", "age p50", "age p95", "age max"]
  const rows = [...results].map(([count, rows]) => summaryRow(count, rows))
  console.log(
    formatTable(
      [...header, "health p95", "health max", "rss MiB", `cpu ≤${GOAL_CPU_PERCENT}%`, "age ≤1.5s"],
      rows,
    ),
  )
  console.log(
    "cpu: the agent over the polled window (sampling, plus serving /metrics/containers and /health 4×/s);\n" +
      "quiet cpu: the agent with no requests at all; dockerd: the whole Engine, other users' containers included.\n" +
      "age: generated_at − sampled_at per container per response (the Engine's read time to serving);\n" +
      "health: /health's sample_age_ms (the agent's last completed sample to serving).",
  )
}

const printGoals = (results: ReadonlyMap<number, ReadonlyArray<Row>>) => {
  const at = results.get(GOAL_CPU_AT)
  const cpu = at === undefined ? Number.NaN : medianOf(at, "cpu")
  console.log(
    at === undefined
      ? `goal: agent cpu ≤ ${GOAL_CPU_PERCENT}% of one core at ${GOAL_CPU_AT} containers: not measured (not in --counts)`
      : `goal: agent cpu ≤ ${GOAL_CPU_PERCENT}% of one core at ${GOAL_CPU_AT} containers: ` +
          `${cpu <= GOAL_CPU_PERCENT ? "PASS" : "MISS"} (${fmt(cpu, 2)}%, quiet ${fmt(medianOf(at, "quietCpu"), 2)}%)`,
  )
  const worst = Math.max(...[...results.values()].map((rows) => medianOf(rows, "ageMax")))
  const worstP95 = Math.max(...[...results.values()].map((rows) => medianOf(rows, "ageP95")))
  console.log(
    `goal: sample age ≤ ${GOAL_AGE_MS} ms (judged on the max): ${worst <= GOAL_AGE_MS ? "PASS" : "MISS"} ` +
      `(worst max ${fmt(worst, 0)} ms, worst p95 ${fmt(worstP95, 0)} ms)`,
  )
}

const prepareEngine = async () => {
  execFileSync("sh", [ensureDockerd], { stdio: ["ignore", "inherit", "inherit"], timeout: 300_000 })
  const version = execFileSync("docker", ["version", "--format", "{{.Server.Version}}"], { encoding: "utf8" })
  console.log(
    `Docker Engine ${version.trim()}, image ${IMAGE}; ${await othersRunning()} other containers running now ` +
      "(the agent samples them too)",
  )
}

const main = async () => {
  const options = parseAgentOptions(process.argv.slice(2))
  if (options === undefined) return
  // The machine is often shared: the load before the run says how far to trust its numbers.
  console.log(`node ${process.version}, ${availableParallelism()} CPUs, load average ${loadAverage()}`)
  if (loadavg()[0]! > availableParallelism()) {
    console.log("warning: the CPUs are already busy with something else; expect noisy numbers")
  }
  await prepareEngine()
  if (options.cpuProfDir !== undefined) {
    mkdirSync(options.cpuProfDir, { recursive: true })
    console.log(`profiling the agent into ${options.cpuProfDir}: its cpu numbers include the profiler's cost`)
  }
  console.log(
    `agent: POLL_INTERVAL=1, API on 127.0.0.1; per run ${options.warmupS} s warm-up, ` +
      `${options.quietS} s quiet, ${options.windowS} s polled every 250 ms`,
  )
  const results = new Map<number, Array<Row>>()
  for (const count of options.counts) {
    await growTo(count, lifetimeS(options))
    for (let round = 1; round <= options.rounds; round++) {
      const run = await measureAgentRun({ count, round, ...options })
      const row = rowOf(run)
      results.set(count, [...(results.get(count) ?? []), row])
      console.log(describeRun(count, round, run, row))
    }
  }
  printSummary(options, results)
  printGoals(results)
}

stopChildrenOnExit()
removeAllOnExit()
try {
  await main()
} catch (error) {
  console.error(`bench:agent failed: ${error instanceof Error ? error.message : String(error)}`)
  process.exitCode = 1
} finally {
  await stopAll()
  await removeAll().catch((error: unknown) =>
    console.error(`removing the containers failed: ${String(error)}`),
  )
  const seconds = ((performance.now() - started) / 1000).toFixed(1)
  console.log(`\ntotal runtime ${seconds} s (load average now ${loadAverage()})`)
}
