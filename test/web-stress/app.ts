/**
 * Runs the web-stress workload as a child process, as a container would run it, and reads its
 * counters from /proc: stress is proved by what the kernel saw the process consume.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import { waitFor, within } from "../support/wait.ts"

const repoRoot = fileURLToPath(new URL("../..", import.meta.url))

export interface Workload {
  /** `http://host:port` */
  readonly url: string
  readonly pid: number
  readonly child: ChildProcess
  /** GET `path` and parse the JSON answer. */
  // biome-ignore lint/suspicious/noExplicitAny: tests read the answers' fields directly, and expect checks them
  readonly json: (path: string) => Promise<{ readonly status: number; readonly body: any }>
  /** What the process wrote to stdout so far. */
  readonly stdout: () => string
  /** The fields of the first log line of `event`, once it is written (within 10 s). */
  readonly logged: (event: string) => Promise<Record<string, unknown>>
  /** SIGTERM, then the exit code (SIGKILL and a failure after 10 s). */
  readonly stop: () => Promise<number | null>
}

interface Spawned {
  readonly child: ChildProcess
  readonly stdout: () => string
  readonly stderr: () => string
}

const spawnWorkload = (env: Record<string, string>): Spawned => {
  const child = spawn(process.execPath, ["--import", "tsx", "deploy/web-stress/main.ts"], {
    cwd: repoRoot,
    // Only what Node and tsx need: nothing from the test runner's environment reaches the config.
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", PORT: "0", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  })
  // Should the test runner itself die, the workload must not be left burning CPU.
  const orphanGuard = () => child.kill("SIGKILL")
  process.once("exit", orphanGuard)
  child.once("exit", () => process.off("exit", orphanGuard))
  let stdout = ""
  let stderr = ""
  child.stdout!.setEncoding("utf8").on("data", (text: string) => {
    stdout += text
  })
  child.stderr!.setEncoding("utf8").on("data", (text: string) => {
    stderr += text
  })
  return { child, stdout: () => stdout, stderr: () => stderr }
}

/** The complete JSON lines written so far. */
const logLines = (text: string): Array<Record<string, unknown>> =>
  text
    .split("\n")
    .slice(0, -1)
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as Record<string, unknown>)

const exitCode = (child: ChildProcess) =>
  new Promise<number | null>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode)
    else child.once("exit", (code) => resolve(code))
  })

const stopChild = async (child: ChildProcess): Promise<number | null> => {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode
  child.kill("SIGTERM")
  try {
    return await within("the workload to exit after SIGTERM", 10_000, exitCode(child))
  } catch (error) {
    child.kill("SIGKILL")
    await exitCode(child)
    throw error
  }
}

/** Starts the workload on `host` and a free port, and waits for the address it logs. */
export const startWorkload = async (host: string, env: Record<string, string> = {}): Promise<Workload> => {
  const { child, stdout, stderr } = spawnWorkload({ HOST: host, ...env })
  try {
    const port = await within(
      "the workload to log its listening address",
      30_000,
      new Promise<number>((resolve, reject) => {
        child.stdout!.on("data", () => {
          const listening = logLines(stdout()).find((entry) => entry.event === "listening")
          if (listening !== undefined) resolve(listening.port as number)
        })
        child.once("exit", (code) =>
          reject(new Error(`the workload exited with ${code}:\n${stdout()}${stderr()}`)),
        )
      }),
    )
    const url = `http://${host}:${port}`
    const json = async (path: string) => {
      const response = await fetch(`${url}${path}`, { signal: AbortSignal.timeout(10_000) })
      return { status: response.status, body: await response.json() }
    }
    const logged = (event: string) =>
      waitFor(`the workload to log ${event}`, () => logLines(stdout()).find((entry) => entry.event === event))
    return { url, pid: child.pid!, child, json, stdout, logged, stop: () => stopChild(child) }
  } catch (error) {
    await stopChild(child)
    throw error
  }
}

/** Runs the workload with `env` until it exits by itself, within 30 s. */
export const runWorkloadToExit = async (
  env: Record<string, string>,
): Promise<{ readonly code: number | null; readonly stdout: string; readonly stderr: string }> => {
  const { child, stdout, stderr } = spawnWorkload(env)
  try {
    const code = await within(
      `the workload to exit by itself with ${JSON.stringify(env)}`,
      30_000,
      // "close", not "exit": it comes once the output pipes are drained too.
      new Promise<number | null>((resolve) => child.once("close", (code) => resolve(code))),
    )
    return { code, stdout: stdout(), stderr: stderr() }
  } catch (error) {
    child.kill("SIGKILL")
    throw error
  }
}
