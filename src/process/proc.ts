/** What a process has used, read from Linux's /proc: CPU time and resident memory. */
import { execFileSync } from "node:child_process"
import { readdirSync, readFileSync } from "node:fs"
import { readFile } from "node:fs/promises"

const clockTicksPerSecond = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100
  } catch {
    return 100
  }
})()

/**
 * CPU time (user + system, ms) process `pid` has used so far; undefined where /proc cannot tell.
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

/** The processes `pid` started and that still run (Linux lists each thread's children apart). */
const childrenOf = (pid: number): ReadonlyArray<number> => {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((task) =>
      readFileSync(`/proc/${pid}/task/${task}/children`, "utf8")
        .split(" ")
        .filter((text) => text !== "")
        .map(Number),
    )
  } catch {
    return []
  }
}

/** CPU time of `pid` and every process below it: a balancer with LB_WORKERS > 1 is its workers. */
export const treeCpuTimeMs = (pid: number | undefined): number | undefined => {
  const own = cpuTimeMs(pid)
  if (pid === undefined || own === undefined) return own
  return childrenOf(pid).reduce((sum, child) => sum + (treeCpuTimeMs(child) ?? 0), own)
}

/** The resident set size of process `pid`, in bytes. */
export const rssBytes = async (pid: number): Promise<number> => {
  const status = await readFile(`/proc/${pid}/status`, "utf8")
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status)
  if (!match) throw new Error(`no VmRSS in /proc/${pid}/status`)
  return Number(match[1]) * 1024
}
