/** The idle containers the agent benchmark samples: started through the docker CLI, always removed. */
import { execFile, execFileSync } from "node:child_process"
import { promisify } from "node:util"

const run = promisify(execFile)

export const IMAGE = "swarmguard/busybox:local"
/** Every container of this run carries it, so removal finds them all, even ones this run lost track of. */
const LABEL = "swarmguard.bench"
/** Unique per run: other runs and tests share the Engine. */
export const PREFIX = `sg-bench-agent-${process.pid}-`
const RUN_ID = PREFIX.slice(0, -1)
/** `docker run` is mostly dockerd's work: a few at a time start faster without starving a 2-core machine. */
const START_CONCURRENCY = 4
const CLI_TIMEOUT_MS = 60_000

let started = 0
/** Set from the first start until a removal succeeds: what the exit hook checks. */
let mayHaveContainers = false

const docker = async (args: ReadonlyArray<string>): Promise<string> =>
  (await run("docker", [...args], { timeout: CLI_TIMEOUT_MS, encoding: "utf8" })).stdout.trim()

/**
 * One idle container. `--rm` and `timeout` are the safety net should this process die without
 * cleaning up (SIGKILL): the container ends itself after `lifetimeS` and the Engine removes it.
 * `--init` is what makes `timeout` work: busybox's runs the program as PID 1, which ignores the
 * SIGTERM it sends (measured: without it the container outlives its timeout); under docker-init the
 * program is an ordinary process.
 */
const startOne = (index: number, lifetimeS: number) =>
  docker([
    "run",
    "--detach",
    "--rm",
    "--init",
    "--name",
    `${PREFIX}${index}`,
    "--label",
    `${LABEL}=${RUN_ID}`,
    IMAGE,
    "timeout",
    String(Math.ceil(lifetimeS)),
    "sleep",
    String(Math.ceil(lifetimeS) + 60),
  ])

/** Grows this run's fleet to `count` running containers. */
export const growTo = async (count: number, lifetimeS: number): Promise<void> => {
  mayHaveContainers = true
  const pending = Array.from({ length: Math.max(0, count - started) }, (_, i) => started + i)
  const worker = async () => {
    for (let index = pending.shift(); index !== undefined; index = pending.shift()) {
      await startOne(index, lifetimeS)
      started++
    }
  }
  await Promise.all(Array.from({ length: START_CONCURRENCY }, worker))
}

/** How many running containers the Engine has that are not this run's (the agent samples those too). */
export const othersRunning = async (): Promise<number> => {
  const names = (await docker(["ps", "--format", "{{.Names}}"])).split("\n").filter((n) => n !== "")
  return names.filter((name) => !name.startsWith(PREFIX)).length
}

const idsArgs = ["ps", "--all", "--quiet", "--filter", `label=${LABEL}=${RUN_ID}`]

/** Removes every container of this run, found by label; resolves when the Engine has done so. */
export const removeAll = async (): Promise<void> => {
  const ids = (await docker(idsArgs)).split("\n").filter((id) => id !== "")
  if (ids.length > 0) await docker(["rm", "--force", ...ids])
  started = 0
  mayHaveContainers = false
}

/**
 * Last resort for an exit that skipped `removeAll` (an uncaught error, a signal's `process.exit`):
 * synchronous, because nothing asynchronous runs once the process is exiting.
 */
export const removeAllOnExit = (): void => {
  process.once("exit", () => {
    if (!mayHaveContainers) return
    try {
      const ids = execFileSync("docker", idsArgs, { encoding: "utf8", timeout: CLI_TIMEOUT_MS })
        .split("\n")
        .filter((id) => id !== "")
      if (ids.length > 0) execFileSync("docker", ["rm", "--force", ...ids], { timeout: CLI_TIMEOUT_MS })
    } catch {
      process.stderr.write(
        `could not remove containers labelled ${LABEL}=${RUN_ID}; they end by themselves\n`,
      )
    }
  })
}
