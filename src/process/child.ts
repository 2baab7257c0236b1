/** Starts programs as child processes: a clean environment, output kept in files, an exit, a stop. */
import { type ChildProcess, spawn } from "node:child_process"
import { closeSync, fstatSync, mkdtempSync, openSync, readSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { track } from "./children.ts"

const repoRoot = fileURLToPath(new URL("../..", import.meta.url))
const orphanGuard = new URL("./orphan-guard.ts", import.meta.url).href

export interface Exited {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  /** `performance.now()` when the exit was seen. */
  readonly at: number
  /** Everything the process wrote. */
  readonly stdout: string
  readonly stderr: string
}

export interface Child {
  /** Names the child in errors. */
  readonly name: string
  readonly process: ChildProcess
  readonly pid: number
  /** Settles once the process has exited, however it was stopped. */
  readonly exited: Promise<Exited>
  /** What it wrote so far. */
  readonly stdout: () => string
  readonly stderr: () => string
  /** Both: stdout's, then stderr's. */
  readonly output: () => string
  /** Sends `signal`; the process runs on until it exits by itself. */
  readonly signal: (signal: NodeJS.Signals) => void
  /** Sends `signal` (SIGTERM by default), then SIGKILL when it has not exited within `graceMs`. */
  readonly stop: (graceMs?: number, signal?: NodeJS.Signals) => Promise<Exited>
}

export interface StartOptions {
  /** A cgroup's `cgroup.procs`: the child joins that group before it runs anything. */
  readonly cgroupProcs?: string
}

export interface NodeOptions extends StartOptions {
  /** Node's own flags and preloads, after tsx's, so a preload may be TypeScript too. */
  readonly nodeOptions?: ReadonlyArray<string>
}

/**
 * Where a child's stream goes: a file unlinked as soon as it is open, so only this process and the
 * child hold it and nothing is left on disk, however either ends. Read in full until the child exits;
 * kept in memory after.
 */
const capture = () => {
  const dir = mkdtempSync(join(tmpdir(), "swarmguard-child-"))
  const fd = openSync(join(dir, "output"), "w+")
  rmSync(dir, { recursive: true, force: true })
  // Positioned reads: the child writes through the same open file, and its offset must not move.
  const readAll = () => {
    const buffer = Buffer.alloc(fstatSync(fd).size)
    return buffer.toString("utf8", 0, readSync(fd, buffer, 0, buffer.length, 0))
  }
  let final: string | undefined
  return {
    fd,
    read: () => final ?? readAll(),
    close: () => {
      final ??= readAll()
      closeSync(fd)
      return final
    },
  }
}

/** PATH, HOME, TMPDIR and LANG: what programs need, and nothing that could configure them. */
const baseEnv = (): Record<string, string> => {
  const base: Record<string, string> = {}
  for (const key of ["PATH", "HOME", "TMPDIR", "LANG"]) {
    const value = process.env[key]
    if (value !== undefined) base[key] = value
  }
  return base
}

/**
 * Starts `command` from the repository root with exactly `env` on top of `baseEnv`, so variables of
 * the caller's shell (a stray `LB_ALGORITHM`, say) cannot change what runs.
 */
export const startProgram = (
  name: string,
  command: string,
  args: ReadonlyArray<string>,
  env: Record<string, string>,
  options: StartOptions = {},
): Child => {
  // Files, not pipes: Node writes to a pipe synchronously, so a pipe drained late by a parent busy
  // generating load would stall the child's event loop and be measured as its cost.
  const [out, err] = [capture(), capture()]
  // Joining the cgroup in a shell that then execs the program puts every thread the program starts
  // under the group's limit from its first instruction.
  const [file, argv] =
    options.cgroupProcs === undefined
      ? [command, args]
      : ["/bin/sh", ["-c", 'echo $$ > "$0" && exec "$@"', options.cgroupProcs, command, ...args]]
  const child = spawn(file, argv, {
    cwd: repoRoot,
    env: { ...baseEnv(), ...env },
    stdio: ["ignore", out.fd, err.fd, "ipc"],
  })
  const exited = new Promise<Exited>((resolve) =>
    child.once("exit", (code, signal) =>
      resolve({ code, signal, at: performance.now(), stdout: out.close(), stderr: err.close() }),
    ),
  )
  const stop = (graceMs = 10_000, signal: NodeJS.Signals = "SIGTERM") => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal)
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs)
    return exited.finally(() => clearTimeout(timer))
  }
  const handle: Child = {
    name,
    process: child,
    pid: child.pid!,
    exited,
    stdout: out.read,
    stderr: err.read,
    output: () => `${out.read()}${err.read()}`,
    signal: (signal) => {
      child.kill(signal)
    },
    stop,
  }
  track(handle)
  return handle
}

/**
 * Starts one of the repository's TypeScript programs with Node and tsx. Each preloads orphan-guard.ts,
 * so it exits when this process is gone, even killed outright.
 */
export const startChild = (
  name: string,
  entry: string,
  env: Record<string, string>,
  options: NodeOptions = {},
): Child =>
  startProgram(
    name,
    process.execPath,
    ["--import", "tsx", ...(options.nodeOptions ?? []), "--import", orphanGuard, entry],
    env,
    options,
  )
