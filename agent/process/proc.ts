/** Readers of Linux's /proc and cgroup files for the process source. */
import { readdir, readFile, readlink } from "node:fs/promises"

/** Clock ticks per second of /proc/<pid>/stat times: USER_HZ, 100 on every Linux architecture we run on. */
const USER_HZ = 100

const readText = (path: string) => readFile(path, "utf8")

/** `127.0.0.2:8080` as /proc/net/tcp writes it: little-endian hex address, big-endian hex port. */
const procNetAddress = (host: string, port: number): string => {
  const octets = host.split(".").map(Number).reverse()
  const hex = (n: number, width: number) => n.toString(16).toUpperCase().padStart(width, "0")
  return `${octets.map((o) => hex(o, 2)).join("")}:${hex(port, 4)}`
}

/** The pid of the process listening on host:port (IPv4), or undefined. */
export const findListeningPid = async (host: string, port: number): Promise<number | undefined> => {
  const wanted = [procNetAddress(host, port), procNetAddress("0.0.0.0", port)]
  const table = await readText("/proc/net/tcp")
  const inodes = new Set<string>()
  for (const line of table.split("\n").slice(1)) {
    const fields = line.trim().split(/\s+/)
    // Column 4 is the socket state; 0A is LISTEN.
    if (fields.length > 9 && fields[3] === "0A" && wanted.includes(fields[1]!))
      inodes.add(`socket:[${fields[9]}]`)
  }
  if (inodes.size === 0) return undefined
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue
    const fds = await readdir(`/proc/${entry}/fd`).catch(() => [] as Array<string>)
    for (const fd of fds) {
      const target = await readlink(`/proc/${entry}/fd/${fd}`).catch(() => "")
      if (inodes.has(target)) return Number(entry)
    }
  }
  return undefined
}

export interface ProcessCounters {
  /** User plus system CPU time, in seconds. */
  readonly cpuSeconds: number
  readonly rssBytes: number
  /** Bytes the process read and wrote through system calls (sockets and files). */
  readonly readBytes: number
  readonly writtenBytes: number
}

export const readCounters = async (pid: number): Promise<ProcessCounters> => {
  const [stat, status, io] = await Promise.all([
    readText(`/proc/${pid}/stat`),
    readText(`/proc/${pid}/status`),
    readText(`/proc/${pid}/io`),
  ])
  // The command name may hold spaces and parentheses: fields are counted after its closing one.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  const ticks = Number(fields[11]) + Number(fields[12])
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0)
  return {
    cpuSeconds: ticks / USER_HZ,
    rssBytes: rssKb * 1024,
    readBytes: Number(/rchar:\s+(\d+)/.exec(io)?.[1] ?? 0),
    writtenBytes: Number(/wchar:\s+(\d+)/.exec(io)?.[1] ?? 0),
  }
}

export const memTotalBytes = async (): Promise<number> =>
  Number(/MemTotal:\s+(\d+)/.exec(await readText("/proc/meminfo"))?.[1] ?? 0) * 1024

/** The process's cgroup path for a v1 controller, or its v2 path. */
const cgroupPath = async (
  pid: number,
  controller: string,
): Promise<{ v2: boolean; path: string } | undefined> => {
  for (const line of (await readText(`/proc/${pid}/cgroup`)).split("\n")) {
    const [, controllers, path] = line.split(":")
    if (controllers === undefined || path === undefined) continue
    if (controllers === "") return { v2: true, path }
    if (controllers.split(",").includes(controller)) return { v2: false, path }
  }
  return undefined
}

/** The CPU quota of the process's cgroup in cores, or undefined when unlimited. */
export const cpuLimitCores = async (pid: number): Promise<number | undefined> => {
  const cgroup = await cgroupPath(pid, "cpu").catch(() => undefined)
  if (cgroup === undefined) return undefined
  if (cgroup.v2) {
    const [quota, period] = (await readText(`/sys/fs/cgroup${cgroup.path}/cpu.max`).catch(() => "max")).split(
      " ",
    )
    return quota === "max" || quota === undefined ? undefined : Number(quota) / Number(period)
  }
  // `cpu` is the controller's own mount, or the usual symlink to `cpu,cpuacct`.
  const base = `/sys/fs/cgroup/cpu${cgroup.path}`
  const quota = Number(await readText(`${base}/cpu.cfs_quota_us`).catch(() => "-1"))
  const period = Number(await readText(`${base}/cpu.cfs_period_us`).catch(() => "100000"))
  return quota > 0 ? quota / period : undefined
}

/** The memory limit of the process's cgroup in bytes, or undefined when unlimited. */
export const memoryLimitBytes = async (pid: number): Promise<number | undefined> => {
  const cgroup = await cgroupPath(pid, "memory").catch(() => undefined)
  if (cgroup === undefined) return undefined
  const file = cgroup.v2
    ? `/sys/fs/cgroup${cgroup.path}/memory.max`
    : `/sys/fs/cgroup/memory${cgroup.path}/memory.limit_in_bytes`
  const text = (await readText(file).catch(() => "max")).trim()
  const limit = Number(text)
  // cgroup v1 writes "unlimited" as a huge number close to 2^63.
  return text === "max" || !Number.isFinite(limit) || limit > 2 ** 60 ? undefined : limit
}
