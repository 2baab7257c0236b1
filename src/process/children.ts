/** The child processes started here and still running: stopped together, and never left behind. */
import type { Child } from "./child.ts"

const running = new Set<Child>()
let guarded = false

/** Holds `child` until it exits. */
export const track = (child: Child): void => {
  if (!guarded) {
    guarded = true
    // Last resort, synchronous: whatever is still running when this process exits is killed outright.
    process.once("exit", () => {
      for (const each of running) each.process.kill("SIGKILL")
    })
  }
  running.add(child)
  void child.exited.then(() => running.delete(child))
}

/** SIGTERM (the balancer shuts down gracefully on it), SIGKILL for whatever is left after `graceMs`. */
export const stopAll = async (graceMs = 3_000): Promise<void> => {
  await Promise.all([...running].map((child) => child.stop(graceMs)))
}

/** Children are stopped however a long run ends: normally, on an error, or on Ctrl-C. */
export const stopChildrenOnExit = (): void => {
  const onSignal = (signal: NodeJS.Signals, code: number) => () => {
    process.stderr.write(`\n${signal}: stopping child processes\n`)
    void stopAll().finally(() => process.exit(code))
  }
  process.once("SIGINT", onSignal("SIGINT", 130))
  process.once("SIGTERM", onSignal("SIGTERM", 143))
}
