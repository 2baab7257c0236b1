/**
 * Starts the real balancer for integration tests: in-process from `BalancerLayer` (fast, for most
 * tests), or as a child process running `src/main.ts` (for RSS measurements and start-up failures).
 */
import { type ChildProcess, spawn } from "node:child_process"
import { readFile } from "node:fs/promises"
import { fileURLToPath } from "node:url"
import { NodeHttpClient } from "@effect/platform-node"
import { ConfigProvider, Layer, Logger, LogLevel, ManagedRuntime } from "effect"
import { BalancerLayer } from "../../src/Balancer.ts"
import { LbConfig } from "../../src/Config.ts"
// biome-ignore lint/suspicious/noShadowRestrictedNames: the balancer's service is named Proxy
import { Proxy } from "../../src/Proxy.ts"
import { within } from "./wait.ts"

const repoRoot = fileURLToPath(new URL("../..", import.meta.url))

/** Loopback only, on a free port; the tests' variables come on top. */
const baseEnv = { LB_HOST: "127.0.0.1", LB_PORT: "0" }

export interface Balancer {
  /** `http://127.0.0.1:PORT` */
  readonly url: string
  readonly port: number
  /** Closes the balancer's scope: listener, pools and background fibers. */
  readonly close: () => Promise<void>
}

/** Builds the balancer in this process; the variables reach it through `ConfigProvider.fromMap`. */
export const startBalancer = async (env: Record<string, string>): Promise<Balancer> => {
  const config = ConfigProvider.fromMap(new Map(Object.entries({ ...baseEnv, ...env })))
  const layer = BalancerLayer.pipe(
    Layer.provide(NodeHttpClient.layerUndici),
    Layer.provide(LbConfig.layer),
    Layer.provide(Layer.setConfigProvider(config)),
    // Its logs would bury the test report; LB_TEST_LOGS=1 shows them when debugging.
    Layer.provide(Logger.minimumLogLevel(process.env.LB_TEST_LOGS ? LogLevel.All : LogLevel.None)),
  )
  const runtime = ManagedRuntime.make(layer)
  const close = () => within("the in-process balancer to shut down", 15_000, runtime.dispose())
  try {
    const { address } = await runtime.runPromise(Proxy)
    return { url: `http://127.0.0.1:${address.port}`, port: address.port, close }
  } catch (error) {
    await close()
    throw error
  }
}

export interface BalancerProcess extends Balancer {
  readonly pid: number
  /** What the process wrote to stdout so far (its logs). */
  readonly stdout: () => string
  /** Settles once the process has exited and its output is drained, however it was stopped. */
  readonly exit: Promise<Exit>
}

const LISTENING = /message="load balancer listening".*\baddress=([\d.]+):(\d+)/

interface Main {
  readonly child: ChildProcess
  /** What the process wrote so far. */
  readonly stdout: () => string
  readonly stderr: () => string
}

/** Spawns `src/main.ts` with `env` only, and collects what it writes. */
const spawnMain = (env: Record<string, string>): Main => {
  const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
    cwd: repoRoot,
    // Only what Node and tsx need: nothing from the test runner's environment reaches the config.
    env: {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "",
      TMPDIR: process.env.TMPDIR ?? "/tmp",
      ...baseEnv,
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  })
  // Should the test runner itself die, the balancer must not be left listening.
  const orphanGuard = () => child.kill("SIGKILL")
  process.once("exit", orphanGuard)
  child.once("exit", () => process.off("exit", orphanGuard))
  let stdout = ""
  let stderr = ""
  child.stdout?.setEncoding("utf8").on("data", (text: string) => {
    stdout += text
  })
  child.stderr?.setEncoding("utf8").on("data", (text: string) => {
    stderr += text
  })
  return { child, stdout: () => stdout, stderr: () => stderr }
}

const exited = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve()
    else child.once("exit", () => resolve())
  })

/** Stops the child with SIGTERM (its graceful path), then SIGKILL if it has not exited in time. */
const terminate = async (child: ChildProcess): Promise<void> => {
  if (child.exitCode !== null || child.signalCode !== null) return
  child.kill("SIGTERM")
  try {
    await within("the balancer process to exit after SIGTERM", 10_000, exited(child))
  } catch (error) {
    child.kill("SIGKILL")
    await exited(child)
    throw error
  }
}

/** Runs `src/main.ts` as a child process and waits for the address it logs when listening. */
export const spawnBalancer = async (env: Record<string, string>): Promise<BalancerProcess> => {
  const { child, stdout, stderr } = spawnMain(env)
  const close = () => terminate(child)
  const exit = new Promise<Exit>((resolve) =>
    child.once("close", (code) => resolve({ code, stdout: stdout(), stderr: stderr() })),
  )
  try {
    const port = await within(
      "the balancer process to log its listening address",
      30_000,
      new Promise<number>((resolve, reject) => {
        child.stdout?.on("data", () => {
          const match = LISTENING.exec(stdout())
          if (match) resolve(Number(match[2]))
        })
        child.once("exit", (code) =>
          reject(new Error(`the balancer exited with ${code} before listening:\n${stdout()}${stderr()}`)),
        )
      }),
    )
    return { url: `http://127.0.0.1:${port}`, port, pid: child.pid!, close, stdout, exit }
  } catch (error) {
    await close()
    throw error
  }
}

export interface Exit {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Runs `src/main.ts` with `env` until it exits by itself (within `timeoutMs`, else it is killed). */
export const runBalancerToExit = async (env: Record<string, string>, timeoutMs = 30_000): Promise<Exit> => {
  const { child, stdout, stderr } = spawnMain(env)
  try {
    // "close", not "exit": it comes once the output pipes are drained too.
    const code = await within(
      `the balancer to exit by itself with ${JSON.stringify(env)}`,
      timeoutMs,
      new Promise<number | null>((resolve) => child.once("close", (code) => resolve(code))),
    )
    return { code, stdout: stdout(), stderr: stderr() }
  } catch (error) {
    child.kill("SIGKILL")
    throw new Error(`${String(error)}\nstdout: ${stdout()}\nstderr: ${stderr()}`)
  }
}

/** The resident set size of process `pid`, in bytes, from /proc (Linux). */
export const rssBytes = async (pid: number): Promise<number> => {
  const status = await readFile(`/proc/${pid}/status`, "utf8")
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status)
  if (!match) throw new Error(`no VmRSS in /proc/${pid}/status`)
  return Number(match[1]) * 1024
}
