/**
 * How much CPU this process may use, in cores: its cgroup's CFS quota (what Docker's `--cpus` and a
 * Swarm task's CPU limit set), or, without one, the CPUs it may run on.
 */
import { readFileSync } from "node:fs"
import { availableParallelism } from "node:os"

export interface CpuAllowance {
  readonly cores: number
  /** Where the figure comes from: the quota file read, or `cpus` when no quota applies. */
  readonly source: string
}

/** A file's text, or undefined when it cannot be read (absent, no permission, not Linux). */
export type ReadText = (path: string) => string | undefined

export const readSystemFile: ReadText = (path) => {
  try {
    return readFileSync(path, "latin1")
  } catch {
    return undefined
  }
}

interface Mount {
  /** The directory of the hierarchy that is mounted (a container sees its own cgroup as `/`). */
  readonly root: string
  readonly mountPoint: string
  readonly version: 1 | 2
}

/** mountinfo writes spaces and a few other characters in paths as octal escapes (`\040`). */
const unescapeOctal = (path: string) =>
  path.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)))

/** The cgroup mounts that hold the cpu controller: v1 ones with `cpu` among their options, and v2 ones. */
const cpuMounts = (mountinfo: string): Array<Mount> => {
  const mounts: Array<Mount> = []
  for (const line of mountinfo.split("\n")) {
    const fields = line.split(" ")
    const separator = fields.indexOf("-")
    if (separator < 5) continue
    const fsType = fields[separator + 1]
    const root = unescapeOctal(fields[3]!)
    const mountPoint = unescapeOctal(fields[4]!)
    if (fsType === "cgroup2") mounts.push({ root, mountPoint, version: 2 })
    else if (fsType === "cgroup" && (fields[separator + 3] ?? "").split(",").includes("cpu")) {
      mounts.push({ root, mountPoint, version: 1 })
    }
  }
  return mounts
}

/**
 * The process's cgroup for the cpu controller, from /proc/self/cgroup: the v1 line naming `cpu` where
 * the machine mounts v1 controllers (hybrid hosts keep `cpu` there and an empty v2 tree beside it),
 * else the v2 line `0::<path>`.
 */
const cpuCgroup = (selfCgroup: string): { readonly path: string; readonly version: 1 | 2 } | undefined => {
  let unified: string | undefined
  for (const line of selfCgroup.split("\n")) {
    const [id, controllers, ...rest] = line.split(":")
    const path = rest.join(":")
    if (controllers === undefined || path === "") continue
    if (controllers.split(",").includes("cpu")) return { path, version: 1 }
    if (id === "0" && controllers === "") unified = path
  }
  return unified === undefined ? undefined : { path: unified, version: 2 }
}

/** The directory of `path` under `mount`, or undefined when the mount does not show it. */
const directoryOf = (mount: Mount, path: string): string | undefined => {
  const base = mount.mountPoint.replace(/\/$/, "")
  if (mount.root === "/") return `${base}${path === "/" ? "" : path}`
  if (path === mount.root) return base
  if (path.startsWith(`${mount.root}/`)) return `${base}${path.slice(mount.root.length)}`
  return undefined
}

/** Cores a directory's own quota allows, or undefined when it sets none. */
const quotaAt = (read: ReadText, directory: string, version: 1 | 2): number | undefined => {
  if (version === 2) {
    const [quota, period] = (read(`${directory}/cpu.max`) ?? "").trim().split(/\s+/)
    const cores = Number(quota) / Number(period)
    return quota === "max" || !Number.isFinite(cores) || cores <= 0 ? undefined : cores
  }
  const quota = Number(read(`${directory}/cpu.cfs_quota_us`)?.trim())
  const period = Number(read(`${directory}/cpu.cfs_period_us`)?.trim())
  const cores = quota / period
  // -1 is v1's "no quota".
  return !Number.isFinite(cores) || cores <= 0 ? undefined : cores
}

/**
 * The tightest quota on the way from the process's cgroup up to the top of its mount: a parent's
 * quota bounds every group under it, as the kernel enforces it.
 */
const cgroupQuota = (read: ReadText): { readonly cores: number; readonly file: string } | undefined => {
  const self = cpuCgroup(read("/proc/self/cgroup") ?? "")
  if (self === undefined) return undefined
  const mounts = cpuMounts(read("/proc/self/mountinfo") ?? "").filter((m) => m.version === self.version)
  for (const mount of mounts) {
    const directory = directoryOf(mount, self.path)
    if (directory === undefined) continue
    const top = mount.mountPoint.replace(/\/$/, "")
    const file = self.version === 2 ? "cpu.max" : "cpu.cfs_quota_us"
    let tightest: { cores: number; file: string } | undefined
    for (let dir = directory; ; dir = dir.slice(0, dir.lastIndexOf("/"))) {
      const cores = quotaAt(read, dir, self.version)
      if (cores !== undefined && (tightest === undefined || cores < tightest.cores)) {
        tightest = { cores, file: `${dir}/${file}` }
      }
      if (dir.length <= top.length || !dir.includes("/")) break
    }
    return tightest
  }
  return undefined
}

/**
 * The allowance now. Read again whenever it matters (once a second in load reports): a replica's
 * quota can change while it runs. A quota above the CPUs the process may use is capped at those.
 */
export const readCpuAllowance = (
  read: ReadText = readSystemFile,
  cpus: () => number = availableParallelism,
): CpuAllowance => {
  const available = cpus()
  const quota = cgroupQuota(read)
  return quota === undefined || quota.cores >= available
    ? { cores: available, source: "cpus" }
    : { cores: quota.cores, source: quota.file }
}
