/**
 * The embedded cluster of the local comparison: three web-stress replicas as processes on distinct
 * loopback addresses, each in a cgroup with its own CPU allowance (as `docker service create
 * --limit-cpu` gives a task), a monitoring agent reading them through /proc, one balancer per
 * algorithm discovering them from that agent exactly as in Swarm, and NGINX and HAProxy where
 * installed.
 */
import { availableParallelism } from "node:os"
import { fileURLToPath } from "node:url"
import type { Algorithm } from "../../src/domain/Algorithm.ts"
import { spawnBalancer } from "../../src/process/balancer.ts"
import { type Child, startChild } from "../../src/process/child.ts"
import { stopAll } from "../../src/process/children.ts"
import { get } from "../../src/process/http.ts"
import { freePorts } from "../../src/process/ports.ts"
import { cpuTimeMs } from "../../src/process/proc.ts"
import { untilAnswers } from "../../src/process/wait.ts"
import { type CpuLimits, makeCpuLimits } from "./cgroup.ts"
import { type ReferenceSet, startReferences } from "./references.ts"
import type { ComparisonTarget, Contender, Neighbour } from "./target.ts"

export const SERVICE = "web-stress"
/** The stack's allowance for a web-stress task. */
const FULL_CORES = 0.5
const REPLICAS = 3
const READY_TIMEOUT_MS = 60_000
const SETTLE_TIMEOUT_MS = 20_000
const CALIBRATION_REQUESTS = 40
/** The noisy neighbour's process name. */
const NEIGHBOUR = "neighbour"
const REMOVE_ATTEMPTS = 10

const entry = (file: string) => fileURLToPath(new URL(file, import.meta.url))

interface ReplicaProcess {
  readonly child: Child
  fraction: number
}

export const startLocalTarget = async (
  algorithms: ReadonlyArray<Algorithm>,
  withReferences: boolean,
): Promise<ComparisonTarget> => {
  const names = Array.from({ length: REPLICAS }, (_, i) => `web-${i + 1}`)
  const hosts = names.map((_, i) => `127.0.0.${i + 2}`)
  const [port = 8080] = await freePorts(hosts[0]!, 1)
  const limits: CpuLimits | undefined = makeCpuLimits(names)
  const processes = new Map<string, ReplicaProcess>()
  const originOf = (name: string) => `http://${hosts[names.indexOf(name)]}:${port}`
  const cpuMs = (name: string) => cpuTimeMs(processes.get(name)?.child.pid) ?? 0

  const startReplica = async (name: string, fraction: number) => {
    const child = startChild(
      name,
      entry("../web-stress/main.ts"),
      {
        HOST: hosts[names.indexOf(name)]!,
        PORT: String(port),
        REPLICA_NAME: name,
        // Without cgroups a slower replica is one whose requests cost more CPU.
        WORK_FACTOR: limits === undefined ? String(1 / fraction) : "1",
      },
      limits === undefined ? {} : { cgroupProcs: limits.procsFile(name) },
    )
    processes.set(name, { child, fraction })
    await untilAnswers(child, `${originOf(name)}/health`, READY_TIMEOUT_MS)
  }

  const close = async () => {
    await stopAll()
    // A child's exit is seen a moment before the kernel empties its group.
    for (let attempt = 0; attempt < REMOVE_ATTEMPTS; attempt++) {
      try {
        limits?.remove()
        return
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 200))
      }
    }
    // Still busy: removed by the next run (cgroup.ts).
  }

  try {
    for (const name of names) limits?.setCores(name, FULL_CORES)
    await Promise.all(names.map((name) => startReplica(name, 1)))
    const agentOrigin = await startAgent(hosts, port)
    const balancers = await startBalancers(algorithms, agentOrigin, port)
    const referenceHosts = names.map((name) => new URL(originOf(name)).host)
    const references = withReferences
      ? await startReferences(referenceHosts)
      : { references: [], status: { nginx: { used: false, detail: "skipped (--no-references)" } } }
    const origins = new Map<string, string>([
      ...[...balancers].map(([name, { origin }]) => [name, origin] as const),
      ...references.references.map((reference) => [reference.name, reference.origin] as const),
    ])
    // Every contender process, first and second, by the origin it serves: its CPU per request is
    // part of what it costs the machine the replicas run on.
    const pids = new Map<string, number>([
      ...[...balancers.values()].map(({ origin, pid }) => [origin, pid] as const),
      ...references.references.map((reference) => [reference.origin, reference.pid] as const),
    ])
    const contenders: Array<Contender> = [
      ...algorithms.map((name) => ({ name, reference: false })),
      ...references.references.map((reference) => ({ name: reference.name, reference: true })),
    ]

    // Second processes of each contender, for the two-balancers scenario: started when first asked for.
    const seconds = new Map<string, Promise<string>>()
    let secondReferences: Promise<ReferenceSet> | undefined
    const secondReference = async (contender: Contender) => {
      secondReferences ??= startReferences(referenceHosts)
      const reference = (await secondReferences).references.find((each) => each.name === contender.name)
      if (reference === undefined) throw new Error(`no second ${contender.name} started`)
      pids.set(reference.origin, reference.pid)
      return reference.origin
    }
    const secondBalancer = async (contender: Contender) => {
      const { origin, pid } = await startBalancer(contender.name as Algorithm, agentOrigin, port, "-2")
      pids.set(origin, pid)
      await untilEveryReplicaIsKnown([origin], REPLICAS)
      return origin
    }
    const second = (contender: Contender): Promise<string> => {
      const started =
        seconds.get(contender.name) ??
        (contender.reference ? secondReference(contender) : secondBalancer(contender))
      seconds.set(contender.name, started)
      return started
    }

    const replicaGet = async (name: string, path: string) => {
      const answer = await get(`${originOf(name)}${path}`)
      if (answer?.status !== 200)
        throw new Error(
          `${name} answered ${answer?.status ?? "nothing"} to ${path}: is web-stress up to date?`,
        )
    }

    const neighbour = async (name: string, weight: number): Promise<Neighbour> => {
      if (limits === undefined) {
        const hog = startChild(NEIGHBOUR, entry("./hog.ts"), {})
        return {
          note: "cgroups are not writable here: the hog ran unpinned and unweighted, beside every process.",
          stop: async () => void (await hog.stop(1_000)),
        }
      }
      // The last CPU: the first is where interrupts and most other work tend to land.
      const cpu = String(availableParallelism() - 1)
      const shared = limits.shareCpu(name, processes.get(name)!.child.pid, cpu, weight)
      const hog = startChild(NEIGHBOUR, entry("./hog.ts"), {}, { cgroupProcs: shared.neighbourProcs })
      shared.pinNeighbour(hog.pid)
      const placed = `${name} and a CPU hog share a node group, the hog with ${weight} times ${name}'s cpu weight`
      return {
        note:
          shared.unpinned === undefined
            ? `${placed}, both pinned to CPU ${cpu} with cpusets.`
            : `${placed}; pinning them to CPU ${cpu} failed (${shared.unpinned}), so they share every CPU, ` +
              "a weaker neighbour than intended.",
        stop: async () => {
          await hog.stop(1_000)
          shared.undo()
        },
      }
    }

    return {
      kind: "local",
      replicas: names,
      contenders,
      use: async (contender) => origins.get(contender.name)!,
      contenderCpuMs: (origin) => cpuTimeMs(pids.get(origin)),
      second,
      setCapacity: async (name, fraction) => {
        const replica = processes.get(name)!
        if (replica.fraction === fraction) return
        if (limits !== undefined) {
          limits.setCores(name, FULL_CORES * fraction)
          replica.fraction = fraction
          return
        }
        replica.child.process.kill("SIGTERM")
        await replica.child.exited
        await startReplica(name, fraction)
      },
      cores: (name) => FULL_CORES * (processes.get(name)?.fraction ?? 1),
      costMs: async (path) => {
        // One at a time on web-1: the CPU it spends is the requests' cost, with no queueing mixed in.
        // The first requests run before the JIT has compiled the work, and would overstate it.
        for (let i = 0; i < CALIBRATION_REQUESTS / 2; i++) await get(`${originOf(names[0]!)}${path}`)
        const before = cpuMs(names[0]!)
        for (let i = 0; i < CALIBRATION_REQUESTS; i++) await get(`${originOf(names[0]!)}${path}`)
        return (cpuMs(names[0]!) - before) / CALIBRATION_REQUESTS
      },
      direct: (name) => originOf(name),
      cpuWindow: async () => {
        const startedAt = performance.now()
        const before = Object.fromEntries(names.map((name) => [name, cpuMs(name)]))
        return {
          stop: async () => {
            const wallMs = performance.now() - startedAt
            return Object.fromEntries(
              names.map((name) => [name, ((cpuMs(name) - before[name]!) / wallMs) * 100]),
            )
          },
        }
      },
      stress: async (name, stepPercent, steps) => {
        const origin = originOf(name)
        let added = 0
        const add = () => {
          if (added++ < steps)
            void get(`${origin}/stress/incremental?cpu=${stepPercent}&duration=${steps + 5}`)
        }
        add()
        const timer = setInterval(add, 1000)
        return async () => {
          clearInterval(timer)
          await get(`${origin}/stress/stop`)
        }
      },
      setErrorShare: (name, share) =>
        replicaGet(name, share > 0 ? `/fault/errors?share=${share}` : "/fault/stop"),
      neighbour,
      setLoadReports: async (enabled) => {
        for (const name of names) await replicaGet(name, `/load-reports?enabled=${enabled}`)
      },
      settle: () => settle(names.map(originOf)),
      references: references.status,
      notes: [
        limits === undefined
          ? "cgroups were not writable here, so a slower replica is one whose requests cost more CPU (WORK_FACTOR)."
          : "Replica capacity is a CPU allowance enforced by the kernel (a cgroup CFS quota, as Docker's " +
            `--cpus): ${FULL_CORES} cores for a full replica.`,
      ],
      close,
    }
  } catch (error) {
    await close()
    throw error
  }
}

/** The monitoring agent with the process source, reporting the replicas as tasks of `SERVICE`. */
const startAgent = async (hosts: ReadonlyArray<string>, port: number): Promise<string> => {
  const [agentPort] = await freePorts("127.0.0.1", 1)
  const agent = startChild("agent", entry("../../agent/main.ts"), {
    AGENT_SOURCE: "process",
    PROCESS_TARGETS: hosts.map((host) => `${SERVICE}@${host}:${port}`).join(","),
    API_HOST: "127.0.0.1",
    API_PORT: String(agentPort),
    NODE_NAME: "local",
  })
  const origin = `127.0.0.1:${agentPort}`
  await untilAnswers(agent, `http://${origin}/metrics/containers`, READY_TIMEOUT_MS)
  return origin
}

/** One balancer per algorithm, each at its defaults apart from where to listen and what to balance. */
const startBalancers = async (
  algorithms: ReadonlyArray<Algorithm>,
  agent: string,
  targetPort: number,
): Promise<Map<string, Served>> => {
  const balancers = new Map<string, Served>()
  await Promise.all(
    algorithms.map(async (algorithm) =>
      balancers.set(algorithm, await startBalancer(algorithm, agent, targetPort)),
    ),
  )
  await untilEveryReplicaIsKnown(
    [...balancers.values()].map(({ origin }) => origin),
    REPLICAS,
  )
  return balancers
}

/** A balancer with `algorithm`, at its defaults apart from where to listen and what to balance. */
const startBalancer = async (algorithm: Algorithm, agent: string, targetPort: number, suffix = "") => {
  const balancer = await spawnBalancer(
    {
      LB_ALGORITHM: algorithm,
      WORKER_NODES: agent,
      TARGET_SERVICE: SERVICE,
      TARGET_PORT: String(targetPort),
    },
    { name: `balancer-${algorithm}${suffix}`, readyTimeoutMs: READY_TIMEOUT_MS },
  )
  return { origin: balancer.url, pid: balancer.pid }
}

/** Where a contender's process listens, and which process it is. */
interface Served {
  readonly origin: string
  readonly pid: number
}

/** Waits until no replica is still working on an earlier run's requests. */
const settle = async (origins: ReadonlyArray<string>) => {
  const deadline = performance.now() + SETTLE_TIMEOUT_MS
  for (const origin of origins) {
    while (performance.now() < deadline) {
      const answer = await get(`${origin}/metrics`)
      // The /metrics request itself is one in flight.
      const inFlight = answer === undefined ? 0 : (JSON.parse(answer.body).requests?.in_flight ?? 0)
      if (inFlight <= 1) break
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
}

/** Every balancer has discovered every replica through the agent, healthy and with fresh metrics. */
const untilEveryReplicaIsKnown = async (origins: ReadonlyArray<string>, count: number) => {
  const deadline = performance.now() + READY_TIMEOUT_MS
  for (const origin of origins) {
    for (;;) {
      const answer = await get(`${origin}/_lb/replicas`)
      const rows =
        answer?.status === 200
          ? (JSON.parse(answer.body) as Array<{ healthy: boolean; metrics: { fresh: boolean } | null }>)
          : []
      if (rows.length === count && rows.every((row) => row.healthy && row.metrics?.fresh)) break
      if (performance.now() > deadline)
        throw new Error(`${origin} did not discover ${count} healthy replicas`)
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
  }
}
