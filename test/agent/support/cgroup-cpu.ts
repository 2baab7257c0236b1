/**
 * The kernel's own count of a container's CPU time, read from its cgroup by the test itself, so what
 * the agent reports can be held against what the container really used over the same interval,
 * however much of the machine it was given.
 */
import { readFile } from "node:fs/promises"
import { setTimeout as sleep } from "node:timers/promises"

/** The file counting the CPU time of `pid`'s cgroup, and how to read it as seconds (v1 or v2). */
export const cgroupCpuCounter = async (pid: number): Promise<() => Promise<number>> => {
  const lines = (await readFile(`/proc/${pid}/cgroup`, "utf8")).trim().split("\n")
  for (const line of lines) {
    const [, controllers, path] = line.split(":")
    if (controllers?.split(",").includes("cpuacct")) {
      const file = `/sys/fs/cgroup/cpuacct${path}/cpuacct.usage`
      return async () => Number(await readFile(file, "utf8")) / 1e9
    }
  }
  const unified = lines.find((line) => line.startsWith("0::"))
  if (unified === undefined) throw new Error(`no CPU accounting cgroup for ${pid}: ${lines.join("; ")}`)
  const file = `/sys/fs/cgroup${unified.slice(3)}/cpu.stat`
  return async () => Number(/usage_usec (\d+)/.exec(await readFile(file, "utf8"))?.[1]) / 1e6
}

interface Reading {
  /** Epoch ms just before and just after the read (the Engine stamps its frames with this clock). */
  readonly from: number
  readonly to: number
  readonly seconds: number
}

export interface CpuBounds {
  /** CPU seconds used within the interval, at least and at most, as the readings around it bound it. */
  readonly min: number
  readonly max: number
}

export interface CpuRecorder {
  /** Bounds on the CPU seconds `name` used between the epoch ms `from` and `to`. */
  readonly within: (name: string, from: number, to: number) => CpuBounds
  readonly stop: () => Promise<void>
}

/**
 * Reads every counter about every `intervalMs` until stopped. The readings just before and just after
 * each end of an interval bound what was used in it; a slow machine spaces the readings out, which
 * widens the bounds but never makes them wrong.
 */
export const recordCpu = (
  counters: Readonly<Record<string, () => Promise<number>>>,
  intervalMs = 20,
): CpuRecorder => {
  const readings = new Map<string, Array<Reading>>(Object.keys(counters).map((name) => [name, []]))
  let running = true
  const loop = (async () => {
    while (running) {
      for (const [name, read] of Object.entries(counters)) {
        // The count was taken somewhere between these two times.
        const from = Date.now()
        const seconds = await read().catch(() => undefined)
        if (seconds !== undefined) readings.get(name)!.push({ from, to: Date.now(), seconds })
      }
      await sleep(intervalMs)
    }
  })()
  return {
    within: (name, from, to) => {
      const all = readings.get(name) ?? []
      const lastBefore = (t: number) => all.findLast((reading) => reading.to <= t)
      const firstAfter = (t: number) => all.find((reading) => reading.from >= t)
      const [beforeFrom, afterFrom, beforeTo, afterTo] = [
        lastBefore(from),
        firstAfter(from),
        lastBefore(to),
        firstAfter(to),
      ]
      if (!beforeFrom || !afterFrom || !beforeTo || !afterTo) {
        throw new Error(`no readings of ${name} around ${from}..${to}`)
      }
      return {
        min: Math.max(0, beforeTo.seconds - afterFrom.seconds),
        max: afterTo.seconds - beforeFrom.seconds,
      }
    },
    stop: async () => {
      running = false
      await loop
    },
  }
}
