/** One measurement of the agent: started fresh, warmed up, measured quiet and then polled, stopped. */
import { execFileSync } from "node:child_process"
import { join } from "node:path"
import { setTimeout as sleep } from "node:timers/promises"
import { fileURLToPath } from "node:url"
import { Either, Schema } from "effect"
import { AgentReport } from "../../src/domain/AgentReport.ts"
import { type Child, startChild } from "../../src/process/child.ts"
import { stopAll } from "../../src/process/children.ts"
import { get } from "../../src/process/http.ts"
import { freePorts } from "../../src/process/ports.ts"
import { cpuTimeMs, rssBytes } from "../../src/process/proc.ts"
import { nextMessage, untilAnswers } from "../../src/process/wait.ts"
import { PREFIX } from "./agent-containers.ts"

/** tsx compiles on start and two cores are shared: generous, but a hung agent still ends the run. */
const READY_TIMEOUT_MS = 60_000
const POLL_MS = 250

export interface AgentRun {
  /** Percent of one core over the polled window (sampling plus serving the polls). */
  readonly cpuPercent: number
  /** Percent of one core over the quiet window (sampling alone); NaN when skipped. */
  readonly quietCpuPercent: number
  /** dockerd's percent of one core over the polled window; NaN when its pid is unknown. */
  readonly dockerdCpuPercent: number
  /** `generated_at - sampled_at` of this run's containers, one per container per response (ms). */
  readonly ages: ReadonlyArray<number>
  /** /health's `sample_age_ms`, one per response (ms). */
  readonly healthAges: ReadonlyArray<number>
  readonly rssMiB: number
  /** The fewest of this run's containers any report listed, and the most containers any listed. */
  readonly fewestOurs: number
  readonly mostReported: number
  readonly polls: number
  /** Polls that got no answer, a non-200, or a body that did not decode. */
  readonly failedPolls: number
}

export interface RunPlan {
  readonly count: number
  readonly round: number
  readonly warmupS: number
  readonly quietS: number
  readonly windowS: number
  /** Where V8 CPU profiles of the quiet and polled phases go; none when undefined. */
  readonly cpuProfDir: string | undefined
}

const decodeReport = Schema.decodeUnknownEither(Schema.parseJson(AgentReport))
const HealthBody = Schema.Struct({ sample_age_ms: Schema.NullOr(Schema.Number) })
const decodeHealth = Schema.decodeUnknownEither(Schema.parseJson(HealthBody))

const dockerdPid = (): number | undefined => {
  try {
    const pid = Number(execFileSync("pgrep", ["-x", "-o", "dockerd"], { encoding: "utf8" }).trim())
    return Number.isInteger(pid) && pid > 0 ? pid : undefined
  } catch {
    return undefined
  }
}

const rssMiB = (pid: number): Promise<number> =>
  rssBytes(pid).then(
    (bytes) => bytes / 1024 / 1024,
    () => Number.NaN,
  )

/** Percent of one core a process used while `during` ran; wall time from the monotonic clock. */
const cpuPercentDuring = async <A>(
  pids: ReadonlyArray<number | undefined>,
  during: () => Promise<A>,
): Promise<{ readonly result: A; readonly percents: ReadonlyArray<number> }> => {
  const before = pids.map(cpuTimeMs)
  const started = performance.now()
  const result = await during()
  const elapsed = performance.now() - started
  const percents = pids.map((pid, i) => {
    const [was, now] = [before[i], cpuTimeMs(pid)]
    return was === undefined || now === undefined ? Number.NaN : ((now - was) / elapsed) * 100
  })
  return { result, percents }
}

/** The ages of this run's containers in one report; undefined when it is not a 200 report. */
const reportAges = (answer: { status: number; body: string } | undefined) => {
  if (answer?.status !== 200) return undefined
  const report = decodeReport(answer.body)
  if (Either.isLeft(report)) return undefined
  const generatedAt = report.right.generated_at ?? report.right.timestamp * 1000
  const ours = report.right.containers.filter((row) => row.container_name.startsWith(PREFIX))
  return {
    ages: ours.flatMap((row) => (row.sampled_at === undefined ? [] : [generatedAt - row.sampled_at])),
    ours: ours.length,
    reported: report.right.containers.length,
  }
}

const healthAge = (answer: { status: number; body: string } | undefined): number | undefined => {
  if (answer?.status !== 200) return undefined
  const health = decodeHealth(answer.body)
  return Either.isRight(health) ? (health.right.sample_age_ms ?? undefined) : undefined
}

/** Waits (bounded) until a report lists all `count` of this run's containers; the warm-up's first part. */
const untilAllListed = async (url: string, count: number, deadline: number): Promise<boolean> => {
  while (performance.now() < deadline) {
    if ((reportAges(await get(url))?.ours ?? 0) >= count) return true
    await sleep(POLL_MS)
  }
  return false
}

/** Polls both endpoints every POLL_MS for `durationMs`; a slow answer delays the next tick, none pile up. */
const poll = async (base: string, durationMs: number) => {
  const ages: Array<number> = []
  const healthAges: Array<number> = []
  let polls = 0
  let failedPolls = 0
  let fewestOurs = Number.POSITIVE_INFINITY
  let mostReported = 0
  const end = performance.now() + durationMs
  for (let due = performance.now(); due < end; due = Math.max(due + POLL_MS, performance.now())) {
    await sleep(Math.max(0, due - performance.now()))
    const [report, health] = await Promise.all([get(`${base}/metrics/containers`), get(`${base}/health`)])
    const seen = reportAges(report)
    const age = healthAge(health)
    polls++
    if (seen === undefined || age === undefined) failedPolls++
    if (seen !== undefined) {
      ages.push(...seen.ages)
      fewestOurs = Math.min(fewestOurs, seen.ours)
      mostReported = Math.max(mostReported, seen.reported)
    }
    if (age !== undefined) healthAges.push(age)
  }
  return { ages, healthAges, polls, failedPolls, fewestOurs, mostReported }
}

const agentEnv = (port: number): Record<string, string> => ({
  API_HOST: "127.0.0.1",
  API_PORT: String(port),
  POLL_INTERVAL: "1",
  AGENT_SOURCE: "docker",
})

const profiledEntry = fileURLToPath(new URL("./agent-profiled.ts", import.meta.url))

/** The next profiling acknowledgement from agent-profiled.ts. */
const acknowledged = (agent: Child) => nextMessage(agent, "acknowledge a profiling command", 30_000)

/** Runs `during`, with the agent profiled throughout into `path` when profiling is on. */
const profiled = async <A>(agent: Child, path: string | undefined, during: () => Promise<A>): Promise<A> => {
  if (path === undefined) return during()
  agent.process.send({ profile: "start" })
  await acknowledged(agent)
  const result = await during()
  agent.process.send({ profile: "stop", path })
  await acknowledged(agent)
  return result
}

const profilePath = (plan: RunPlan, phase: string) =>
  plan.cpuProfDir === undefined
    ? undefined
    : join(plan.cpuProfDir, `agent-${plan.count}-round${plan.round}-${phase}.cpuprofile`)

/** Starts the agent against the containers already running, measures it, and stops it. */
export const measureAgentRun = async (plan: RunPlan): Promise<AgentRun> => {
  const [port] = await freePorts("127.0.0.1", 1)
  const base = `http://127.0.0.1:${port}`
  const entry = plan.cpuProfDir === undefined ? "agent/main.ts" : profiledEntry
  const agent = startChild(`agent (${plan.count} containers)`, entry, agentEnv(port!))
  try {
    const pid = agent.pid
    await untilAnswers(agent, `${base}/metrics/containers`, READY_TIMEOUT_MS)
    const warmedUpAt = performance.now() + plan.warmupS * 1000
    if (!(await untilAllListed(`${base}/metrics/containers`, plan.count, warmedUpAt + 10_000))) {
      console.log(`  warning: the agent never listed all ${plan.count} containers during the warm-up`)
    }
    await sleep(Math.max(0, warmedUpAt - performance.now()))
    const quiet =
      plan.quietS > 0
        ? await profiled(agent, profilePath(plan, "quiet"), () =>
            cpuPercentDuring([pid], () => sleep(plan.quietS * 1000)),
          )
        : undefined
    const polled = await profiled(agent, profilePath(plan, "polled"), () =>
      cpuPercentDuring([pid, dockerdPid()], () => poll(base, plan.windowS * 1000)),
    )
    return {
      ...polled.result,
      cpuPercent: polled.percents[0]!,
      dockerdCpuPercent: polled.percents[1]!,
      quietCpuPercent: quiet?.percents[0] ?? Number.NaN,
      rssMiB: await rssMiB(pid),
    }
  } finally {
    await stopAll()
  }
}
