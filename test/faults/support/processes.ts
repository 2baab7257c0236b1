/** Fault-suite processes: replicas to SIGKILL like crashed containers, balancers to collect garbage in. */
import { fileURLToPath } from "node:url"
import { type BalancerProcess, spawnBalancer } from "../../../src/process/balancer.ts"
import { type Child, type Exited, startChild } from "../../../src/process/child.ts"
import { nextMessage } from "../../../src/process/wait.ts"
import { waitFor } from "../../support/wait.ts"
import type { FromReplica, ReplicaMode, ToReplica } from "./replica-process.ts"

const replicaProgram = fileURLToPath(new URL("./replica-process.ts", import.meta.url))
const gcHookProgram = fileURLToPath(new URL("./gc-hook.ts", import.meta.url))

export interface ReplicaProcess {
  /** `replica-1`, ...: the `x-replica` header of every answer. */
  readonly name: string
  readonly host: string
  readonly port: number
  readonly origin: string
  /** `host:port`: the balancer's id for a replica given in `REPLICAS`. */
  readonly id: string
  readonly pid: number
  /** Switches the replica's behaviour; resolves once the replica has applied it. */
  readonly setMode: (mode: ReplicaMode) => Promise<void>
  /** Requests received per path so far. */
  readonly hits: () => Promise<Record<string, number>>
  /** Sends `signal` and resolves when the process has exited (SIGKILL after 5 s if it has not). */
  readonly kill: (signal?: NodeJS.Signals) => Promise<Exited>
}

/** The next IPC message of `type` from a replica (its exit rejects). */
const replyOf = <T extends FromReplica["type"]>(
  child: Child,
  type: T,
  what: string,
): Promise<Extract<FromReplica, { type: T }>> =>
  nextMessage(child, what, 15_000, (message) => (message as FromReplica).type === type)

const startReplicaProcess = async (index: number, port: number): Promise<ReplicaProcess> => {
  const name = `replica-${index + 1}`
  // 127.0.0.2, .3, ...: distinct hosts, as test/support/replicas.ts gives them.
  const host = `127.0.0.${index + 2}`
  const child = startChild(name, replicaProgram, {
    REPLICA_NAME: name,
    REPLICA_HOST: host,
    REPLICA_PORT: String(port),
  })
  const kill = (signal: NodeJS.Signals = "SIGKILL") => child.stop(5_000, signal)
  try {
    const listening = await replyOf(child, "listening", `listen on ${host}`)
    // Replies are matched by type, so one request of a type at a time.
    let queue: Promise<unknown> = Promise.resolve()
    const ask = <T extends FromReplica["type"]>(message: ToReplica, type: T) => {
      const answer = queue.then(() => {
        const reply = replyOf(child, type, `answer ${JSON.stringify(message)}`)
        child.process.send(message)
        return reply
      })
      queue = answer.catch(() => {})
      return answer
    }
    return {
      name,
      host,
      port: listening.port,
      origin: `http://${host}:${listening.port}`,
      id: `${host}:${listening.port}`,
      pid: child.pid,
      setMode: async (mode) => {
        await ask({ type: "mode", mode }, "mode")
      },
      hits: async () => (await ask({ type: "hits" }, "hits")).hits,
      kill,
    }
  } catch (error) {
    await kill()
    throw error
  }
}

export interface ReplicaProcesses {
  readonly replicas: ReadonlyArray<ReplicaProcess>
  /** The `REPLICAS` value naming them all. */
  readonly origins: string
  readonly killAll: () => Promise<void>
}

/** Starts `count` replica processes on 127.0.0.2, .3, ..., each on a free port; all or none. */
export const spawnReplicas = async (count: number): Promise<ReplicaProcesses> => {
  const started = await Promise.allSettled(
    Array.from({ length: count }, (_, index) => startReplicaProcess(index, 0)),
  )
  const replicas = started.flatMap((result) => (result.status === "fulfilled" ? [result.value] : []))
  const killAll = async () => {
    await Promise.all(replicas.map((replica) => replica.kill()))
  }
  const failed = started.find((result) => result.status === "rejected")
  if (failed !== undefined) {
    await killAll()
    throw failed.reason
  }
  return { replicas, origins: replicas.map((replica) => replica.origin).join(","), killAll }
}

export interface BalancerChild extends BalancerProcess {
  /** With `gcHook`: a full garbage collection in the balancer, resolved once it is done. */
  readonly collectGarbage: () => Promise<void>
}

/** Runs the balancer as a child process; with `gcHook`, one whose garbage can be collected on demand. */
export const spawnBalancerChild = async (
  env: Record<string, string>,
  { gcHook = false }: { readonly gcHook?: boolean } = {},
): Promise<BalancerChild> => {
  const lb = await spawnBalancer(
    env,
    gcHook ? { nodeOptions: ["--expose-gc", "--import", gcHookProgram] } : {},
  )
  let collections = 0
  return {
    ...lb,
    collectGarbage: async () => {
      collections++
      const done = `[faults-gc] collected ${collections}\n`
      lb.signal("SIGUSR2")
      const ok = await waitFor(`the balancer to report garbage collection ${collections}`, () => {
        const said = lb.stderr()
        return said.includes(done) ? true : said.includes("[faults-gc] unavailable") ? false : undefined
      })
      if (!ok) throw new Error("the balancer was not started with the GC hook")
    },
  }
}
