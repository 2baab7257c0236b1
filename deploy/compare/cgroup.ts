/**
 * CPU allowances for local replica processes, enforced by the kernel exactly as Docker's `--cpus`
 * does: a cgroup with a CFS quota per period. Needs root and a writable cpu controller (v1 or v2);
 * where there is none, the caller emulates capacity another way and says so. The same groups can pin
 * their processes to CPUs (the cpuset controller) and weigh them against each other, which the
 * noisy-neighbour scenario needs.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"

/** Docker's default period: 100 ms. */
const PERIOD_US = 100_000

interface Hierarchy {
  /** Directory of the cgroup that holds this run's groups (the cpu controller's). */
  readonly root: string
  /** Where the cpuset controller's groups are: a hierarchy of its own on v1, the same one on v2. */
  readonly cpusetRoot: string
  readonly setCores: (group: string, cores: number) => void
  /** `weight` times a default group's share of a contended CPU. */
  readonly setWeight: (group: string, weight: number) => void
  /**
   * Makes `group` able to pin: on v1 a cpuset group takes no process until it has CPUs and memory
   * nodes (its parent's, to start with); on v2 the controller must be handed down to it.
   */
  readonly enableCpuset: (group: string) => void
}

const read = (file: string) => {
  try {
    return readFileSync(file, "utf8").trim()
  } catch {
    return ""
  }
}

/** A write that says which file and value failed, for a report note. */
const write = (file: string, value: string) => {
  try {
    writeFileSync(file, value)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? String(error)
    throw new Error(`writing "${value}" to ${file} failed: ${code}`)
  }
}

const v1 = (base: string): Hierarchy => ({
  root: base,
  cpusetRoot: "/sys/fs/cgroup/cpuset",
  setCores: (group, cores) => {
    write(join(group, "cpu.cfs_period_us"), String(PERIOD_US))
    write(join(group, "cpu.cfs_quota_us"), String(Math.round(cores * PERIOD_US)))
  },
  // 1024 is every group's default.
  setWeight: (group, weight) => write(join(group, "cpu.shares"), String(Math.round(1024 * weight))),
  enableCpuset: (group) => {
    for (const file of ["cpuset.cpus", "cpuset.mems"]) write(join(group, file), read(join(group, "..", file)))
  },
})

const v2 = (base: string): Hierarchy => ({
  root: base,
  cpusetRoot: base,
  setCores: (group, cores) => write(join(group, "cpu.max"), `${Math.round(cores * PERIOD_US)} ${PERIOD_US}`),
  // 100 is every group's default.
  setWeight: (group, weight) => write(join(group, "cpu.weight"), String(Math.round(100 * weight))),
  enableCpuset: (group) => {
    for (const dir of [base, group]) {
      if (!read(join(dir, "cgroup.subtree_control")).split(/\s+/).includes("cpuset"))
        write(join(dir, "cgroup.subtree_control"), "+cpuset")
    }
  },
})

/** The cpu controller's mount, if this process may create groups under it. */
const findHierarchy = (): Hierarchy | undefined => {
  if (process.getuid?.() !== 0) return undefined
  if (existsSync("/sys/fs/cgroup/cpu/cpu.cfs_quota_us") || existsSync("/sys/fs/cgroup/cpu/tasks")) {
    return v1("/sys/fs/cgroup/cpu")
  }
  return read("/sys/fs/cgroup/cgroup.subtree_control").split(/\s+/).includes("cpu")
    ? v2("/sys/fs/cgroup")
    : undefined
}

const isRunning = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** Removes `dir` and the groups under it, deepest first; fails while a process is still in one. */
const removeTree = (dir: string) => {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) removeTree(join(dir, entry.name))
  }
  rmdirSync(dir)
}

/** Groups of a run that was killed before it could clean up: empty now, so they can go. */
const removeAbandoned = (root: string) => {
  if (!existsSync(root)) return
  for (const entry of readdirSync(root)) {
    const match = /^swarmguard-(\d+)$/.exec(entry)
    if (match === null || isRunning(Number(match[1]))) continue
    try {
      removeTree(join(root, entry))
    } catch {
      // Still has a process in it: left for a later run.
    }
  }
}

/** A replica moved beside a neighbour: one "node" group holding both, pinned to one CPU. */
export interface SharedCpu {
  /** The neighbour's `cgroup.procs`: it joins its group there as it starts. */
  readonly neighbourProcs: string
  /** Why the node could not be pinned to the CPU (the write that failed), or undefined when it was. */
  readonly unpinned: string | undefined
  /** Pins the started neighbour to the node's CPU too, where the cpuset controller is separate. */
  readonly pinNeighbour: (pid: number) => void
  /** Moves the replica back to its own group and every CPU; call once the neighbour has exited. */
  readonly undo: () => void
}

export interface CpuLimits {
  /** The group's `cgroup.procs` file: a process writes its pid there to join it. */
  readonly procsFile: (name: string) => string
  readonly setCores: (name: string, cores: number) => void
  /**
   * Moves process `pid` of replica `name`, with its allowance, into a node group pinned to CPU `cpu`,
   * beside a group for a neighbour with `weight` times the replica's CPU weight: on that CPU the
   * neighbour then gets `weight` times the replica's time, without counting towards the replica's
   * usage. Throws, naming the failed write, when even the weights cannot be set.
   */
  readonly shareCpu: (name: string, pid: number, cpu: string, weight: number) => SharedCpu
  /** Removes the groups; call once their processes have exited. */
  readonly remove: () => void
}

/** The node group that holds a replica and its neighbour, and the neighbour's group inside it. */
const NODE = "node"
const NEIGHBOUR = "neighbour"

/**
 * One cgroup per name under `swarmguard-<pid>`, or undefined when cgroups cannot be written here.
 * Creating a group is tried for real, so a read-only mount is found out now rather than mid-run.
 */
export const makeCpuLimits = (names: ReadonlyArray<string>): CpuLimits | undefined => {
  const hierarchy = findHierarchy()
  if (hierarchy === undefined) return undefined
  removeAbandoned(hierarchy.root)
  if (hierarchy.cpusetRoot !== hierarchy.root) removeAbandoned(hierarchy.cpusetRoot)
  const own = `swarmguard-${process.pid}`
  const parent = join(hierarchy.root, own)
  const separateCpuset = hierarchy.cpusetRoot !== hierarchy.root
  const cpusetParent = join(hierarchy.cpusetRoot, own)
  const cores = new Map<string, number>()
  const groupOf = (name: string) => join(parent, name)
  const enableCpu = (group: string) => {
    if (!separateCpuset && !read(join(group, "cgroup.subtree_control")).split(/\s+/).includes("cpu"))
      write(join(group, "cgroup.subtree_control"), "+cpu")
  }
  try {
    mkdirSync(parent)
    // On v2 a child's cpu.max exists only once its parent hands the controller down.
    enableCpu(parent)
    for (const name of names) mkdirSync(groupOf(name))
  } catch {
    return undefined
  }

  const shareCpu = (name: string, pid: number, cpu: string, weight: number): SharedCpu => {
    const node = join(parent, NODE)
    const replica = join(node, name)
    const neighbour = join(node, NEIGHBOUR)
    for (const group of [node, replica, neighbour]) if (!existsSync(group)) mkdirSync(group)
    enableCpu(node)
    hierarchy.setCores(replica, cores.get(name) ?? 1)
    hierarchy.setWeight(neighbour, weight)
    write(join(replica, "cgroup.procs"), String(pid))
    const cpusetNode = join(cpusetParent, NODE)
    let unpinned: string | undefined
    try {
      if (separateCpuset) {
        for (const group of [cpusetParent, cpusetNode]) {
          if (!existsSync(group)) mkdirSync(group)
          hierarchy.enableCpuset(group)
        }
      } else {
        hierarchy.enableCpuset(parent)
      }
      write(join(separateCpuset ? cpusetNode : node, "cpuset.cpus"), cpu)
      if (separateCpuset) write(join(cpusetNode, "cgroup.procs"), String(pid))
    } catch (error) {
      unpinned = error instanceof Error ? error.message : String(error)
    }
    return {
      neighbourProcs: join(neighbour, "cgroup.procs"),
      unpinned,
      pinNeighbour: (neighbourPid) => {
        if (separateCpuset && unpinned === undefined)
          write(join(cpusetNode, "cgroup.procs"), String(neighbourPid))
      },
      undo: () => {
        write(join(groupOf(name), "cgroup.procs"), String(pid))
        if (separateCpuset && unpinned === undefined)
          write(join(hierarchy.cpusetRoot, "cgroup.procs"), String(pid))
      },
    }
  }

  const remove = () => {
    if (existsSync(parent)) removeTree(parent)
    if (separateCpuset && existsSync(cpusetParent)) removeTree(cpusetParent)
  }
  // On Ctrl-C the children are stopped and the process exits without closing the target: the groups
  // go then, or, if a child is not reaped yet, with the next run's removeAbandoned.
  process.once("exit", () => {
    try {
      remove()
    } catch {
      // Left for the next run.
    }
  })

  return {
    procsFile: (name) => join(groupOf(name), "cgroup.procs"),
    setCores: (name, value) => {
      hierarchy.setCores(groupOf(name), value)
      cores.set(name, value)
    },
    shareCpu,
    remove,
  }
}
