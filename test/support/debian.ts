/**
 * Debian packages that tests need (chromium, nginx, haproxy, ...), installed with apt on first use when
 * the machine lacks them: CI and developers run as root on Debian, and no machine is assumed prepared.
 */
import { execFile } from "node:child_process"
import { accessSync, constants, statSync } from "node:fs"
import { delimiter, join } from "node:path"
import { promisify } from "node:util"

const run = promisify(execFile)

// Daemons such as nginx and haproxy live in sbin, which a non-login PATH may leave out.
const STANDARD_PATH = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]

const isExecutable = (path: string) => {
  try {
    accessSync(path, constants.X_OK)
    return statSync(path).isFile()
  } catch {
    return false
  }
}

/**
 * The absolute path of `command` (a name looked up on PATH and in the standard bin folders, or a path),
 * or undefined when it is not there. Never installs: for code that only reports what is missing.
 */
export const findCommand = (command: string): string | undefined => {
  if (command.includes("/")) return isExecutable(command) ? command : undefined
  const folders = [...(process.env.PATH ?? "").split(delimiter).filter(Boolean), ...STANDARD_PATH]
  return folders.map((folder) => join(folder, command)).find(isExecutable)
}

export interface InstallOptions {
  /** Bound on the whole install, index update included. */
  readonly timeoutMs?: number
}

// Other jobs on the machine may be running apt at the same time: wait for its lock instead of failing.
const aptGet = (args: ReadonlyArray<string>, timeoutMs: number) =>
  run("apt-get", ["-o", "DPkg::Lock::Timeout=120", "-qq", ...args], {
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    timeout: timeoutMs,
    maxBuffer: 16 * 1024 * 1024,
  })

// The package index is refreshed once per test process, however many packages are installed.
let updated: Promise<unknown> | undefined

const describeFailure = (what: string, error: unknown) => {
  const { stderr, message } = error as { stderr?: string; message?: string }
  return new Error(`${what} failed: ${(stderr || message || String(error)).trim()}`)
}

/**
 * The path of `command`, installing Debian's `pkg` first when the command is missing. Recommended
 * packages are left out, as in deploy/ensure-dockerd.sh: they are not needed to run the command.
 */
export const ensureDebianPackage = async (
  command: string,
  pkg: string,
  { timeoutMs = 300_000 }: InstallOptions = {},
): Promise<string> => {
  const found = findCommand(command)
  if (found !== undefined) return found
  if (process.getuid?.() !== 0) {
    throw new Error(`${command} is missing and installing it needs root: apt-get install ${pkg}`)
  }
  const deadline = Date.now() + timeoutMs
  const remaining = () => Math.max(1_000, deadline - Date.now())
  updated ??= aptGet(["update"], remaining()).catch((error) => {
    updated = undefined
    throw describeFailure("apt-get update", error)
  })
  await updated
  await aptGet(["install", "-y", "--no-install-recommends", pkg], remaining()).catch((error) => {
    throw describeFailure(`apt-get install ${pkg}`, error)
  })
  const installed = findCommand(command)
  if (installed === undefined) throw new Error(`installed ${pkg}, but ${command} is still not found`)
  return installed
}
