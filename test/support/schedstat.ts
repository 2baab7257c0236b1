/**
 * What the scheduler says a process's threads did: time on a CPU, and time runnable but waiting for
 * one. Their sum is the CPU a process asked for, which a busy machine delays but cannot shrink, so a
 * test can check how much a process burns without depending on how many cores it was given.
 */
import { readdir, readFile } from "node:fs/promises"

export interface SchedTimes {
  /** Seconds on a CPU, summed over the threads. */
  readonly running: number
  /** Seconds runnable but waiting on a run queue, summed over the threads. */
  readonly waiting: number
}

/** Thread id → its times, from /proc/<pid>/task/<tid>/schedstat ("run_ns wait_ns slices"). */
const threadTimes = async (pid: number): Promise<Map<string, SchedTimes>> => {
  const times = new Map<string, SchedTimes>()
  for (const tid of await readdir(`/proc/${pid}/task`)) {
    // A thread that ended between the listing and the read is simply not counted.
    const text = await readFile(`/proc/${pid}/task/${tid}/schedstat`, "utf8").catch(() => undefined)
    if (text === undefined) continue
    const [run, wait] = text.trim().split(/\s+/).map(Number)
    times.set(tid, { running: run! / 1e9, waiting: wait! / 1e9 })
  }
  return times
}

export interface SchedWindow {
  /** Ends the window: per second of it, cores used and cores waited for, over threads alive throughout. */
  readonly end: () => Promise<SchedTimes & { readonly seconds: number }>
}

/** Starts measuring `pid`'s threads now. */
export const schedWindow = async (pid: number): Promise<SchedWindow> => {
  const before = await threadTimes(pid)
  const startedAt = performance.now()
  return {
    end: async () => {
      const after = await threadTimes(pid)
      const seconds = (performance.now() - startedAt) / 1000
      let running = 0
      let waiting = 0
      for (const [tid, end] of after) {
        const start = before.get(tid)
        if (start === undefined) continue
        running += end.running - start.running
        waiting += end.waiting - start.waiting
      }
      return { running: running / seconds, waiting: waiting / seconds, seconds }
    },
  }
}
