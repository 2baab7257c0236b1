/**
 * Replicas and balancers as child processes: a replica can be SIGKILLed like a crashed container, and
 * a balancer can be sent SIGTERM and its exit code and memory read.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import { waitFor, within } from "../../support/wait.ts"
import type { FromReplica, ReplicaMode, ToReplica } from "./replica-process.ts"

const repoRoot = fileURLToPath(new URL("../../..", import.meta.url))
const replicaProgram = fileURLToPath(new URL("./replica-process.ts", import.meta.url))
const gcHookProgram = fileURLToPath(new URL("./gc-hook.ts", import.meta.url))

export interface Exited {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  /** `performance.now()` when the exit was seen. */
  readonly at: number
}

/** Resolves once `child` has exited, however (already exited included). */
const exitOf = (child: ChildProcess): Promise<Exited> =>
  new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      resolve({ code: child.exitCode, signal: child.signalCode, at: performance.now() })
      return
    }
    child.once("exit", (code, signal) => resolve({ code, signal, at: performance.now() }))
  })

/** Should the test runner itself die, no child may be left running. */
const guard = (child: ChildProcess) => {
  const orphanGuard = () => child.kill("SIGKILL")
  process.once("exit", orphanGuard)
  child.once("exit", () => process.off("exit", orphanGuard))
}

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

/** Waits for the first IPC message of `type` from `child` (or its exit, which rejects). */
const nextMessage = <T extends FromReplica["type"]>(
  child: ChildProcess,
  type: T,
  what: string,
): Promise<Extract<FromReplica, { type: T }>> =>
  within(
    what,
    15_000,
    new Promise((resolve, reject) => {
      const onMessage = (message: FromReplica) => {
        if (message.type !== type) return
        cleanup()
        resolve(message as Extract<FromReplica, { type: T }>)
      }
      const onExit = (code: number | null, signal: string | null) => {
        cleanup()
        reject(new Error(`${what}: the process exited (${code ?? signal}) first`))
      }
      const cleanup = () => {
        child.off("message", onMessage)
        child.off("exit", onExit)
      }
      child.on("message", onMessage)
      child.once("exit", onExit)
    }),
  )

const startReplicaProcess = async (index: number, port: number): Promise<ReplicaProcess> => {
  const name = `replica-${index + 1}`
  // 127.0.0.2, .3, ...: distinct hosts, as test/support/replicas.ts gives them.
  const host = `127.0.0.${index + 2}`
  const child = spawn(process.execPath, ["--import", "tsx", replicaProgram], {
    cwd: repoRoot,
    env: {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "",
      REPLICA_NAME: name,
      REPLICA_HOST: host,
      REPLICA_PORT: String(port),
    },
    stdio: ["ignore", "ignore", "inherit", "ipc"],
  })
  guard(child)
  let exited: Promise<Exited> | undefined
  const kill = (signal: NodeJS.Signals = "SIGKILL") => {
    exited ??= exitOf(child)
    if (child.exitCode === null && child.signalCode === null) child.kill(signal)
    const timer = setTimeout(() => child.kill("SIGKILL"), 5_000)
    return exited.finally(() => clearTimeout(timer))
  }
  try {
    const listening = await nextMessage(child, "listening", `${name} to listen on ${host}`)
    // Replies are matched by type, so one request of a type at a time.
    let queue: Promise<unknown> = Promise.resolve()
    const ask = <T extends FromReplica["type"]>(message: ToReplica, type: T) => {
      const answer = queue.then(() => {
        const reply = nextMessage(child, type, `${name} to answer ${JSON.stringify(message)}`)
        child.send(message)
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
      pid: child.pid!,
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

export interface BalancerChild {
  /** `http://127.0.0.1:PORT` */
  readonly url: string
  readonly port: number
  readonly pid: number
  /** Sends `signal` (the process keeps running until it exits by itself). */
  readonly signal: (signal: NodeJS.Signals) => void
  /** Settles when the process exits. */
  readonly exited: Promise<Exited>
  readonly output: () => string
  /** SIGTERM, then SIGKILL when it has not exited within `graceMs`. */
  readonly stop: (graceMs?: number) => Promise<Exited>
  /** With `gcHook`: a full garbage collection in the balancer, resolved once it is done. */
  readonly collectGarbage: () => Promise<void>
}

const LISTENING = /message="load balancer listening".*\baddress=([\d.]+):(\d+)/

/**
 * Runs `src/main.ts` as a child process with `env` only (and loopback defaults), and waits for the
 * address it logs. test/support/balancer.ts's spawnBalancer does not expose the exit code a drain test
 * needs, hence this one.
 */
export const spawnBalancerChild = async (
  env: Record<string, string>,
  { gcHook = false }: { readonly gcHook?: boolean } = {},
): Promise<BalancerChild> => {
  const flags = gcHook ? ["--expose-gc", "--import", "tsx", "--import", gcHookProgram] : ["--import", "tsx"]
  const child = spawn(process.execPath, [...flags, "src/main.ts"], {
    cwd: repoRoot,
    env: {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "",
      TMPDIR: process.env.TMPDIR ?? "/tmp",
      LB_HOST: "127.0.0.1",
      LB_PORT: "0",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  })
  guard(child)
  let output = ""
  let collections = 0
  const append = (text: string) => {
    // The soak's summary lines arrive once a second for minutes: keep the tail only.
    output = (output + text).slice(-200_000)
  }
  child.stdout.setEncoding("utf8").on("data", append)
  child.stderr.setEncoding("utf8").on("data", append)
  const exited = exitOf(child)
  const stop = async (graceMs = 10_000) => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM")
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs)
    return exited.finally(() => clearTimeout(timer))
  }
  try {
    const port = await within(
      "the balancer process to log its listening address",
      30_000,
      new Promise<number>((resolve, reject) => {
        child.stdout.on("data", () => {
          const match = LISTENING.exec(output)
          if (match) resolve(Number(match[2]))
        })
        void exited.then(({ code, signal }) =>
          reject(new Error(`the balancer exited (${code ?? signal}) before listening:\n${output}`)),
        )
      }),
    )
    return {
      url: `http://127.0.0.1:${port}`,
      port,
      pid: child.pid!,
      signal: (signal) => child.kill(signal),
      exited,
      output: () => output,
      stop,
      collectGarbage: async () => {
        collections++
        const done = `[faults-gc] collected ${collections}\n`
        child.kill("SIGUSR2")
        await waitFor(`the balancer to report garbage collection ${collections}`, () =>
          output.includes(done) ? true : output.includes("[faults-gc] unavailable") ? false : undefined,
        ).then((ok) => {
          if (!ok) throw new Error("the balancer was not started with the GC hook")
        })
      },
    }
  } catch (error) {
    await stop(1_000)
    throw error
  }
}
