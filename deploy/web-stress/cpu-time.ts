/**
 * A fixed CPU cost for a request: work on the calling thread until it has used a given CPU time. Under
 * a CPU quota the thread stops while throttled and its CPU clock with it, so the same cost takes longer
 * in wall time on a replica allowed less: a replica's capacity follows its allowance, with no
 * calibration of what one unit of work costs on this machine.
 */
import { closeSync, openSync, readdirSync, readlinkSync, readSync } from "node:fs"
import { monteCarloPi } from "./work.ts"

/**
 * Points drawn between two polls of the cheap clock (below): a few microseconds of work, so polling
 * cannot carry the loop far past its target.
 */
const BATCH = 256

const processMicros = (): number => {
  const usage = process.cpuUsage()
  return usage.user + usage.system
}

/**
 * The other threads' CPU time, from the kernel's per-thread counters (nanoseconds, first field of
 * `schedstat`). They are the very figures the process's total adds up for those threads (brought up to
 * date at their scheduler ticks), so the total less them is this thread's own time, exact as of the
 * reading: the kernel updates the caller's own figure when the total is read.
 */
class OtherThreads {
  private readonly files = new Map<string, number>()
  private readonly buffer = Buffer.alloc(128)

  constructor(private readonly ownTid: string) {}

  /** The threads now, their counters opened once and kept while they live. */
  list(): ReadonlyArray<number> {
    const alive = new Set(readdirSync("/proc/self/task"))
    alive.delete(this.ownTid)
    for (const [tid, fd] of this.files) {
      if (alive.has(tid)) continue
      closeSync(fd)
      this.files.delete(tid)
    }
    for (const tid of alive) {
      if (this.files.has(tid)) continue
      try {
        this.files.set(tid, openSync(`/proc/self/task/${tid}/schedstat`, "r"))
      } catch {
        // Ended since the listing.
      }
    }
    return [...this.files.values()]
  }

  /** Their summed CPU time in µs; a thread that ended meanwhile counts 0. */
  micros(files: ReadonlyArray<number>): number {
    let nanos = 0
    for (const fd of files) {
      try {
        const length = readSync(fd, this.buffer, 0, this.buffer.length, 0)
        const space = this.buffer.indexOf(32)
        nanos += Number(this.buffer.toString("latin1", 0, space === -1 || space > length ? length : space))
      } catch {
        // Ended since the listing: its time is in the process's total for good, and so undercounted here
        // once; the request then ends early by that thread's time, which only a retiring worker has.
      }
    }
    return nanos / 1000
  }
}

interface Reading {
  /** This thread's CPU time, µs. */
  readonly own: number
  /** The process's, read at the same moment. */
  readonly total: number
  /** µs from the call to the moment of the reading: what to start it ahead of a target by. */
  readonly ahead: number
}

/** This thread's CPU time beside the process's: the total less the other threads', read consistently. */
const readingFrom = (others: OtherThreads) => (): Reading => {
  const calledAt = performance.now()
  const files = others.list()
  for (let attempt = 0; ; attempt++) {
    const before = others.micros(files)
    const ahead = (performance.now() - calledAt) * 1000
    const total = processMicros()
    const after = others.micros(files)
    // Unchanged around the total: no other thread's figure moved while it was read.
    if (before === after || attempt === 3) return { own: total - after, total, ahead }
  }
}

const otherThreads = (): OtherThreads | undefined => {
  try {
    // "<pid>/task/<tid>": the thread this module is loaded on, the one requests run on.
    const tid = readlinkSync("/proc/thread-self").split("/").pop()!
    const others = new OtherThreads(tid)
    return Number.isFinite(others.micros(others.list())) ? others : undefined
  } catch {
    return undefined
  }
}

/** Newer Node has the calling thread's own CPU time; Node 20 has only the process's. */
const threadCpuUsage = (process as { threadCpuUsage?: () => NodeJS.CpuUsage }).threadCpuUsage
const others = threadCpuUsage === undefined ? otherThreads() : undefined

/**
 * `thread`: Node's own per-thread clock. `process-less-others`: the process's CPU time less the other
 * threads' (Linux, Node 20). `process`: the process's alone, where neither is available; other busy
 * threads (CPU stress workers) then shorten the requests.
 */
export const CPU_CLOCK: "thread" | "process-less-others" | "process" =
  threadCpuUsage !== undefined ? "thread" : others !== undefined ? "process-less-others" : "process"

/**
 * `read` gives this thread's CPU time; `cheap` is a clock that moves at least as fast as it (the
 * process's, or the thread's own) for one system call, polled between batches. On Node 20 `read` costs
 * a few hundred microseconds (a syscall per thread), too slow to poll.
 */
const cheap: () => number =
  threadCpuUsage === undefined
    ? processMicros
    : () => {
        const usage = threadCpuUsage.call(process)
        return usage.user + usage.system
      }
const read: () => Reading =
  others === undefined
    ? () => {
        const now = cheap()
        return { own: now, total: now, ahead: 0 }
      }
    : readingFrom(others)

/**
 * The least time a reading has taken to reach its moment, in µs: about its CPU cost (wall time swells
 * when the thread is descheduled on a busy machine, never shrinks).
 */
let readingAhead = Number.POSITIVE_INFINITY

const timedRead = (): Reading => {
  const reading = read()
  readingAhead = Math.min(readingAhead, reading.ahead)
  return reading
}

export interface CpuSpent {
  readonly cpuMs: number
  readonly wallMs: number
}

/**
 * Runs Monte Carlo batches on this thread until it has spent `ms` of CPU time. The cheap clock is
 * polled; when it says the target is one reading away, this thread's own time is read, and the work
 * stops if that reaches the target. Otherwise the rest is worked off the same way: on the cheap clock
 * alone if no other thread ran since the previous reading (it is then this thread's clock), else with
 * another reading, since other threads move the cheap clock too.
 */
export const spendCpu = (ms: number): CpuSpent => {
  const target = ms * 1000
  const startedAt = performance.now()
  const done = (spent: number) => ({ cpuMs: spent / 1000, wallMs: performance.now() - startedAt })
  const startTotal = cheap()
  const first = timedRead()
  // The first reading's own cost counts: it is work this request made. Its wall time bounds it, should
  // another thread's figure have moved the total meanwhile.
  const start = first.own - Math.min(first.total - startTotal, first.ahead)
  const early = others === undefined ? 0 : readingAhead
  // This thread's time spent as of the cheap clock's `at`, and the other threads' time then.
  let base = { spent: first.own - start, at: first.total, others: first.total - first.own }
  let othersIdle = others === undefined
  for (;;) {
    monteCarloPi(BATCH)
    const estimate = base.spent + (cheap() - base.at)
    if (othersIdle) {
      if (estimate >= target) return done(estimate)
      continue
    }
    if (estimate < target - early) continue
    const now = timedRead()
    const spent = now.own - start
    if (spent >= target) return done(spent)
    othersIdle = now.total - now.own === base.others
    base = { spent, at: now.total, others: now.total - now.own }
  }
}
