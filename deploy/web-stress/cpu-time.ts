/**
 * A fixed CPU cost for a request: work on the calling thread until it has used a given CPU time. Under
 * a CPU quota the thread stops while throttled and its CPU clock with it, so the same cost takes longer
 * in wall time on a replica allowed less: a replica's capacity follows its allowance, with no
 * calibration of what one unit of work costs on this machine.
 */
import { monteCarloPi } from "./work.ts"

/**
 * Points drawn between two readings of the clock: a few microseconds of work, so the loop ends within
 * that (plus one reading, about 3 µs) of its target, far inside a tenth of a millisecond.
 */
const BATCH = 256

/** Newer Node has the calling thread's own CPU time; Node 20 has only the process's. */
const threadCpuUsage = (process as { threadCpuUsage?: () => NodeJS.CpuUsage }).threadCpuUsage

/**
 * `thread`: this thread's CPU time. `process`: the whole process's, exact for this thread (the kernel
 * brings the caller's own time up to date) but counting any other thread busy meanwhile: the CPU
 * stress workers, when /stress/cpu runs, make such requests end sooner.
 */
export const CPU_CLOCK: "thread" | "process" = threadCpuUsage === undefined ? "process" : "thread"

const cpuMicros: () => number =
  threadCpuUsage === undefined
    ? () => {
        const usage = process.cpuUsage()
        return usage.user + usage.system
      }
    : () => {
        const usage = threadCpuUsage.call(process)
        return usage.user + usage.system
      }

export interface CpuSpent {
  readonly cpuMs: number
  readonly wallMs: number
}

/** Runs Monte Carlo batches on this thread until `ms` of CPU time are spent. */
export const spendCpu = (ms: number): CpuSpent => {
  const targetMicros = ms * 1000
  const startedAt = performance.now()
  const start = cpuMicros()
  let spent = 0
  while (spent < targetMicros) {
    monteCarloPi(BATCH)
    spent = cpuMicros() - start
  }
  return { cpuMs: spent / 1000, wallMs: performance.now() - startedAt }
}
