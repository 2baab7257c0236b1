/**
 * The comparison against the deployed Swarm stack: one balancer service whose algorithm is switched
 * with `docker service update`, the web-stress tasks as replicas (named web-<slot> by the stack's
 * REPLICA_NAME), their CPU read from the monitoring agents, a slower replica made with
 * `docker update --cpus` (mid-run too, for the degradation scenario), and background stress, faults
 * and the load-report switch set inside a task with `docker exec`.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process"
import { promisify } from "node:util"
import type { Algorithm } from "../../src/domain/Algorithm.ts"
import { get } from "../../src/process/http.ts"
import type { ComparisonTarget, Contender } from "./target.ts"

const run = promisify(execFile)

export interface SwarmOptions {
  readonly stack: string
  /** The balancer's published address. */
  readonly balancer: string
  /** Every node's agent (`GET /metrics/containers`); on a one-node swarm, this node's. */
  readonly agents: ReadonlyArray<string>
}

const CONVERGE_TIMEOUT_MS = 180_000
const SETTLE_TIMEOUT_MS = 30_000
const CALIBRATION_SECONDS = 4

interface AgentContainer {
  readonly service_name: string
  readonly task_slot?: number | null
  readonly cpu_percent: number
  readonly cpu_limit_cores?: number | null
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

const json = async <A>(url: string): Promise<A | undefined> => {
  const answer = await get(url)
  if (answer?.status !== 200) return undefined
  try {
    return JSON.parse(answer.body) as A
  } catch {
    return undefined
  }
}

const docker = async (...args: Array<string>) =>
  (await run("docker", args, { maxBuffer: 1 << 20 })).stdout.trim()

export const startSwarmTarget = async (
  algorithms: ReadonlyArray<Algorithm>,
  options: SwarmOptions,
): Promise<ComparisonTarget> => {
  const service = `${options.stack}_web-stress`
  const balancerService = `${options.stack}_load-balancer`

  /** Slot → container id, for the tasks of web-stress running on this node. */
  const balancerState = () =>
    json<{ algorithm: string; replicas_healthy: number }>(`${options.balancer}/_lb/health`)
  const containers = new Map<string, string>()
  const listed = await docker(
    "ps",
    "--filter",
    `label=com.docker.swarm.service.name=${service}`,
    "--format",
    '{{.ID}} {{.Label "com.docker.swarm.task.name"}}',
  )
  for (const line of listed.split("\n").filter((l) => l !== "")) {
    const [id, task] = line.split(" ")
    const slot = /\.(\d+)\./.exec(task ?? "")?.[1]
    if (id !== undefined && slot !== undefined) containers.set(`web-${slot}`, id)
  }
  if (containers.size === 0)
    throw new Error(`no running task of ${service} on this node: is the stack deployed?`)
  const names = [...containers.keys()].sort()

  const agentCpu = async (): Promise<Record<string, { percent: number; cores: number | undefined }>> => {
    const reports = await Promise.all(
      options.agents.map((agent) =>
        json<{ containers: Array<AgentContainer> }>(`${agent}/metrics/containers`),
      ),
    )
    const cpu: Record<string, { percent: number; cores: number | undefined }> = {}
    for (const container of reports.flatMap((report) => report?.containers ?? [])) {
      if (container.service_name !== service || container.task_slot == null) continue
      cpu[`web-${container.task_slot}`] = {
        percent: container.cpu_percent,
        cores: container.cpu_limit_cores ?? undefined,
      }
    }
    return cpu
  }

  const original = (await balancerState())?.algorithm
  if (original === undefined)
    throw new Error(`the balancer does not answer at ${options.balancer}/_lb/health`)
  const initial = await agentCpu()
  const fullCores = initial[names[0]!]?.cores ?? 0.5
  const fractions = new Map(names.map((name) => [name, 1]))
  let current = original

  const switchTo = async (algorithm: string) => {
    await docker(
      "service",
      "update",
      "--quiet",
      "--detach=false",
      "--env-add",
      `LB_ALGORITHM=${algorithm}`,
      balancerService,
    )
    current = algorithm
  }

  const use = async (contender: Contender) => {
    if (current !== contender.name) await switchTo(contender.name)
    const deadline = performance.now() + CONVERGE_TIMEOUT_MS
    for (;;) {
      const state = await balancerState()
      const replicas = await json<Array<{ metrics: { fresh: boolean } | null }>>(
        `${options.balancer}/_lb/replicas`,
      )
      const ready =
        state?.algorithm === contender.name &&
        state.replicas_healthy === names.length &&
        replicas?.every((replica) => replica.metrics?.fresh === true)
      if (ready) return options.balancer
      if (performance.now() > deadline)
        throw new Error(`${balancerService} did not come back as ${contender.name}`)
      await sleep(500)
    }
  }

  const stressProcesses = new Set<ChildProcess>()
  /** A GET to the task's own web-stress, from inside it: the overlay is not reachable from here. */
  const inTask = (name: string, path: string) =>
    docker("exec", containers.get(name)!, "node", "-e", `fetch("http://127.0.0.1:8080${path}").catch(()=>{})`)
  const faulty = new Set<string>()

  return {
    kind: "swarm",
    replicas: names,
    contenders: algorithms.map((name) => ({ name, reference: false })),
    use,
    // The balancer runs in a container, possibly on another node: its CPU is not read from here.
    contenderCpuMs: () => undefined,
    // One balancer service: a second one would need a second stack.
    second: undefined,
    setCapacity: async (name, fraction) => {
      if (fractions.get(name) === fraction) return
      await docker("update", "--cpus", String(fullCores * fraction), containers.get(name)!)
      fractions.set(name, fraction)
    },
    cores: (name) => fullCores * (fractions.get(name) ?? 1),
    costMs: async (path) => {
      // Requests one at a time through the balancer, while the agents measure what they cost.
      await use({ name: "round-robin", reference: false })
      let requests = 0
      const samples: Array<number> = []
      const until = performance.now() + CALIBRATION_SECONDS * 1000
      const sampler = setInterval(() => {
        void agentCpu().then((cpu) => samples.push(Object.values(cpu).reduce((sum, c) => sum + c.percent, 0)))
      }, 1000)
      while (performance.now() < until) {
        if ((await get(`${options.balancer}${path}`))?.status === 200) requests++
      }
      clearInterval(sampler)
      const meanPercent = samples.slice(1).reduce((a, b) => a + b, 0) / Math.max(1, samples.length - 1)
      return (meanPercent * 10 * CALIBRATION_SECONDS) / Math.max(1, requests)
    },
    direct: () => undefined,
    cpuWindow: async () => {
      // The agents report each container's CPU over their last poll: averaged once a second.
      const samples: Array<Record<string, { percent: number }>> = []
      const timer = setInterval(() => void agentCpu().then((cpu) => samples.push(cpu)), 1000)
      return {
        stop: async () => {
          clearInterval(timer)
          return Object.fromEntries(
            names.map((name) => {
              const values = samples.map((sample) => sample[name]?.percent ?? 0)
              return [name, values.reduce((a, b) => a + b, 0) / Math.max(1, values.length)]
            }),
          )
        },
      }
    },
    stress: async (name, stepPercent, steps) => {
      const script =
        `let n=0;const add=()=>{if(n++<${steps})fetch("http://127.0.0.1:8080/stress/incremental?cpu=${stepPercent}` +
        `&duration=${steps + 5}").catch(()=>{})};add();const t=setInterval(add,1000);setTimeout(()=>clearInterval(t),${steps * 1000 + 500})`
      const child = spawn("docker", ["exec", containers.get(name)!, "node", "-e", script], {
        stdio: "ignore",
      })
      stressProcesses.add(child)
      return async () => {
        child.kill()
        stressProcesses.delete(child)
        await docker(
          "exec",
          containers.get(name)!,
          "node",
          "-e",
          'fetch("http://127.0.0.1:8080/stress/stop").catch(()=>{})',
        )
      }
    },
    setErrorShare: async (name, share) => {
      await inTask(name, share > 0 ? `/fault/errors?share=${share}` : "/fault/stop")
      if (share > 0) faulty.add(name)
      else faulty.delete(name)
    },
    // Pinning a task and a hog to one CPU is the node's business, not the stack's.
    neighbour: undefined,
    setLoadReports: async (enabled) => {
      for (const name of names) await inTask(name, `/load-reports?enabled=${enabled}`)
    },
    settle: async () => {
      // Everything goes through the balancer: no lease held means no replica still works for us.
      const deadline = performance.now() + SETTLE_TIMEOUT_MS
      while (performance.now() < deadline) {
        const metrics = await json<{ leases?: { active: number } }>(`${options.balancer}/metrics`)
        if ((metrics?.leases?.active ?? 0) === 0) return
        await sleep(100)
      }
    },
    references: {
      nginx: {
        used: false,
        detail: "not run against Swarm: the replicas' overlay addresses are not reachable from the host",
      },
      haproxy: {
        used: false,
        detail: "not run against Swarm: the replicas' overlay addresses are not reachable from the host",
      },
    },
    notes: [
      `Swarm stack ${options.stack}: ${names.length} web-stress tasks with ${fullCores} cores each; ` +
        "a slower replica is made with `docker update --cpus`; the algorithm is switched with `docker service update`.",
      "Replica CPU is what the monitoring agents report, averaged once a second.",
    ],
    close: async () => {
      for (const child of stressProcesses) child.kill()
      for (const name of faulty) await inTask(name, "/fault/stop")
      if (current !== original) await switchTo(original)
      for (const name of names) {
        if (fractions.get(name) !== 1)
          await docker("update", "--cpus", String(fullCores), containers.get(name)!)
      }
    },
  }
}
