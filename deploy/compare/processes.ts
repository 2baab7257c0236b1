/** Child processes of the benchmarks and the comparison: started with tsx, awaited until they answer, always stopped. */
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync } from "node:fs"
import { request } from "node:http"
import { type AddressInfo, createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"

const repoRoot = fileURLToPath(new URL("../../", import.meta.url))
const orphanGuard = new URL("./orphan-guard.ts", import.meta.url).href

/** Lines kept of each child's output, to explain a child that dies or never answers. */
const TAIL_LINES = 30

export interface Child {
  readonly name: string
  readonly process: ChildProcess
  /** The last lines the child wrote (stdout and stderr, to a file in a temporary folder). */
  readonly tail: () => string
  /** Resolves with the exit code (or signal name) once the child has exited. */
  readonly exited: Promise<number | string>
}

const children = new Set<Child>()
const logDir = mkdtempSync(join(tmpdir(), "swarmguard-bench-"))

export interface StartOptions {
  /** A cgroup's `cgroup.procs`: the child joins that group before it runs anything (see cgroup.ts). */
  readonly cgroupProcs?: string
}

/**
 * Starts `node --import tsx <entry>` from the repository root. The environment is exactly `env` plus
 * what Node itself needs, so variables of the calling shell (a stray `LB_ALGORITHM`, say) cannot
 * change what is measured.
 */
export const startChild = (
  name: string,
  entry: string,
  env: Record<string, string>,
  options: StartOptions = {},
): Child =>
  startProgram(name, process.execPath, ["--import", "tsx", "--import", orphanGuard, entry], env, options)

/** Starts any program the same way: output to a log file, stopped with the others. */
export const startProgram = (
  name: string,
  command: string,
  args: ReadonlyArray<string>,
  env: Record<string, string>,
  options: StartOptions = {},
): Child => {
  const base: Record<string, string> = {}
  for (const key of ["PATH", "HOME", "TMPDIR", "LANG"]) {
    const value = process.env[key]
    if (value !== undefined) base[key] = value
  }
  // Output goes to a file, not a pipe: Node writes to a pipe synchronously, so a pipe this process
  // (busy generating load) drained late would stall the child's event loop and be measured as its cost.
  const logPath = join(logDir, `${name.replace(/\W+/g, "-")}.log`)
  const log = openSync(logPath, "w")
  // Joining the cgroup in a shell that then execs the program puts every thread the program starts
  // under the group's limit from its first instruction.
  const [file, argv] =
    options.cgroupProcs === undefined
      ? [command, args]
      : ["/bin/sh", ["-c", 'echo $$ > "$0" && exec "$@"', options.cgroupProcs, command, ...args]]
  const child = spawn(file, argv, {
    cwd: repoRoot,
    env: { ...base, ...env },
    stdio: ["ignore", log, log, "ipc"],
  })
  closeSync(log)
  const tail = () => {
    const text = existsSync(logPath) ? readFileSync(logPath, "utf8") : ""
    return text
      .split("\n")
      .filter((line) => line !== "")
      .slice(-TAIL_LINES)
      .join("\n")
  }
  const exited = new Promise<number | string>((resolve) =>
    child.once("exit", (code, signal) => resolve(code ?? signal ?? "unknown")),
  )
  const handle: Child = { name, process: child, tail, exited }
  children.add(handle)
  void exited.then(() => children.delete(handle))
  return handle
}

const failure = (child: Child, what: string) =>
  new Error(`${child.name} ${what}; its last output:\n${child.tail() || "(none)"}`)

/** The first IPC message a child sends (our own children announce their addresses this way). */
export const firstMessage = <A>(child: Child, timeoutMs: number): Promise<A> =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(failure(child, `sent no message within ${timeoutMs} ms`)),
      timeoutMs,
    )
    child.process.once("message", (message) => {
      clearTimeout(timer)
      resolve(message as A)
    })
    void child.exited.then((code) => {
      clearTimeout(timer)
      reject(failure(child, `exited (${code}) before it was ready`))
    })
  })

/** A one-off GET; undefined when nothing answers. */
export const get = (url: string): Promise<{ status: number; body: string } | undefined> =>
  new Promise((resolve) => {
    // No agent: the request must not leave a keep-alive connection behind.
    const req = request(url, { agent: false, timeout: 1_000 }, (res) => {
      const chunks: Array<Buffer> = []
      res.on("data", (chunk: Buffer) => chunks.push(chunk))
      res.once("end", () =>
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }),
      )
    })
    req.once("timeout", () => req.destroy())
    req.once("error", () => resolve(undefined))
    req.end()
  })

/** Polls `url` until it answers 200, i.e. the proxy is up and reaches a backend. */
export const untilAnswers = async (child: Child, url: string, timeoutMs: number): Promise<void> => {
  const deadline = performance.now() + timeoutMs
  let gone = false
  void child.exited.then(() => {
    gone = true
  })
  while (!gone && performance.now() < deadline) {
    if ((await get(url))?.status === 200) return
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw failure(child, gone ? "exited before it answered" : `did not answer ${url} within ${timeoutMs} ms`)
}

/**
 * Ports free on `host` right now, for children that take their port from the environment. All are
 * held until all are found, so two children never get the same one.
 */
export const freePorts = async (host: string, count: number): Promise<Array<number>> => {
  const servers = Array.from({ length: count }, () => createServer())
  const ports = await Promise.all(
    servers.map(
      (server) =>
        new Promise<number>((resolve, reject) => {
          server.once("error", reject)
          server.listen(0, host, () => resolve((server.address() as AddressInfo).port))
        }),
    ),
  )
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))))
  return ports
}

const clockTicksPerSecond = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100
  } catch {
    return 100
  }
})()

/**
 * CPU time (user + system, ms) a process has used so far, from Linux's /proc; undefined elsewhere.
 * Per request it is steadier than req/s on a shared machine, though not independent of it: the busier
 * a proxy, the more requests each event-loop turn and syscall serves, the less CPU each one costs.
 */
export const cpuTimeMs = (pid: number | undefined): number | undefined => {
  if (pid === undefined) return undefined
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    // Fields after the command name (which may contain spaces) start with field 3, the state.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / clockTicksPerSecond
  } catch {
    return undefined
  }
}

/** SIGTERM (the balancer shuts down gracefully on it), SIGKILL for whatever is left after a grace period. */
export const stopAll = async (graceMs = 3_000): Promise<void> => {
  const running = [...children]
  for (const child of running) child.process.kill("SIGTERM")
  const timer = setTimeout(() => {
    for (const child of running) child.process.kill("SIGKILL")
  }, graceMs)
  await Promise.all(running.map((child) => child.exited))
  clearTimeout(timer)
}

/** Children are stopped however the benchmark ends: normally, on an error, or on Ctrl-C. */
export const stopChildrenOnExit = (): void => {
  const onSignal = (signal: NodeJS.Signals, code: number) => () => {
    process.stderr.write(`\n${signal}: stopping child processes\n`)
    void stopAll().finally(() => process.exit(code))
  }
  process.once("SIGINT", onSignal("SIGINT", 130))
  process.once("SIGTERM", onSignal("SIGTERM", 143))
  // Last resort, synchronous: anything still running when the process exits is killed outright.
  process.once("exit", () => {
    for (const child of children) child.process.kill("SIGKILL")
  })
}
