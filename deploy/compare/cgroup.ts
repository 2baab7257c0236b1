/**
 * CPU allowances for local replica processes, enforced by the kernel exactly as Docker's `--cpus`
 * does: a cgroup with a CFS quota per period. Needs root and a writable cpu controller (v1 or v2);
 * where there is none, the caller emulates capacity another way and says so.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"

/** Docker's default period: 100 ms. */
const PERIOD_US = 100_000

interface Hierarchy {
  /** Directory of the cgroup that holds this run's groups. */
  readonly root: string
  readonly setCores: (group: string, cores: number) => void
}

const v1 = (base: string): Hierarchy => ({
  root: base,
  setCores: (group, cores) => {
    writeFileSync(join(group, "cpu.cfs_period_us"), String(PERIOD_US))
    writeFileSync(join(group, "cpu.cfs_quota_us"), String(Math.round(cores * PERIOD_US)))
  },
})

const v2 = (base: string): Hierarchy => ({
  root: base,
  setCores: (group, cores) =>
    writeFileSync(join(group, "cpu.max"), `${Math.round(cores * PERIOD_US)} ${PERIOD_US}`),
})

/** The cpu controller's mount, if this process may create groups under it. */
const findHierarchy = (): Hierarchy | undefined => {
  if (process.getuid?.() !== 0) return undefined
  if (existsSync("/sys/fs/cgroup/cpu/cpu.cfs_quota_us") || existsSync("/sys/fs/cgroup/cpu/tasks")) {
    return v1("/sys/fs/cgroup/cpu")
  }
  const controllers = (() => {
    try {
      return readFileSync("/sys/fs/cgroup/cgroup.subtree_control", "utf8")
    } catch {
      return ""
    }
  })()
  return controllers.split(/\s+/).includes("cpu") ? v2("/sys/fs/cgroup") : undefined
}

const isRunning = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** Groups of a run that was killed before it could clean up: empty now, so they can go. */
const removeAbandoned = (root: string) => {
  for (const entry of readdirSync(root)) {
    const match = /^swarmguard-(\d+)$/.exec(entry)
    if (match === null || isRunning(Number(match[1]))) continue
    try {
      const parent = join(root, entry)
      for (const group of readdirSync(parent, { withFileTypes: true })) {
        if (group.isDirectory()) rmdirSync(join(parent, group.name))
      }
      rmdirSync(parent)
    } catch {
      // Still has a process in it: left for a later run.
    }
  }
}

export interface CpuLimits {
  /** The group's `cgroup.procs` file: a process writes its pid there to join it. */
  readonly procsFile: (name: string) => string
  readonly setCores: (name: string, cores: number) => void
  /** Removes the groups; call once their processes have exited. */
  readonly remove: () => void
}

/**
 * One cgroup per name under `swarmguard-<pid>`, or undefined when cgroups cannot be written here.
 * Creating a group is tried for real, so a read-only mount is found out now rather than mid-run.
 */
export const makeCpuLimits = (names: ReadonlyArray<string>): CpuLimits | undefined => {
  const hierarchy = findHierarchy()
  if (hierarchy === undefined) return undefined
  removeAbandoned(hierarchy.root)
  const parent = join(hierarchy.root, `swarmguard-${process.pid}`)
  const groupOf = (name: string) => join(parent, name)
  try {
    mkdirSync(parent)
    for (const name of names) mkdirSync(groupOf(name))
  } catch {
    return undefined
  }
  return {
    procsFile: (name) => join(groupOf(name), "cgroup.procs"),
    setCores: (name, cores) => hierarchy.setCores(groupOf(name), cores),
    remove: () => {
      for (const name of names) rmdirSync(groupOf(name))
      rmdirSync(parent)
    },
  }
}
