// The CPU allowance behind the load reports: a cgroup's quota (v1 or v2, the tightest on the way up), else the CPUs.
import { describe, expect, it } from "vitest"
import { readCpuAllowance } from "../../deploy/web-stress/cpu-allowance.ts"

/** A machine's files as a map: anything not in it cannot be read. */
const machine =
  (files: Record<string, string>) =>
  (path: string): string | undefined =>
    files[path]

const cpus = (count: number) => () => count

const V2_MOUNT = "30 22 0:27 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw\n"
const HYBRID_MOUNTS = [
  "30 22 0:27 / /sys/fs/cgroup ro - tmpfs tmpfs ro,mode=755",
  "31 30 0:28 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct",
  "32 30 0:29 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory",
  "40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw",
  "",
].join("\n")

describe("CPU allowance", () => {
  it("reads a container's cpu.max under cgroup v2 (its own group mounted as the root)", () => {
    const read = machine({
      "/proc/self/cgroup": "0::/\n",
      "/proc/self/mountinfo": V2_MOUNT,
      "/sys/fs/cgroup/cpu.max": "50000 100000\n",
    })
    expect(readCpuAllowance(read, cpus(8))).toEqual({ cores: 0.5, source: "/sys/fs/cgroup/cpu.max" })
  })

  it("finds a process's own group under the v2 tree, and takes a parent's tighter quota", () => {
    const files = {
      "/proc/self/cgroup": "0::/bench/web-1\n",
      "/proc/self/mountinfo": V2_MOUNT,
      "/sys/fs/cgroup/bench/web-1/cpu.max": "75000 100000\n",
      "/sys/fs/cgroup/bench/cpu.max": "max 100000\n",
    }
    expect(readCpuAllowance(machine(files), cpus(8)).cores).toBe(0.75)
    const tighter = { ...files, "/sys/fs/cgroup/bench/cpu.max": "20000 100000\n" }
    expect(readCpuAllowance(machine(tighter), cpus(8))).toEqual({
      cores: 0.2,
      source: "/sys/fs/cgroup/bench/cpu.max",
    })
  })

  it("uses the v1 cpu controller where the machine mounts one, beside an empty v2 tree", () => {
    const read = machine({
      "/proc/self/cgroup": "4:memory:/x\n3:cpu,cpuacct:/compare/web-2\n0::/\n",
      "/proc/self/mountinfo": HYBRID_MOUNTS,
      "/sys/fs/cgroup/cpu,cpuacct/compare/web-2/cpu.cfs_quota_us": "25000\n",
      "/sys/fs/cgroup/cpu,cpuacct/compare/web-2/cpu.cfs_period_us": "100000\n",
      "/sys/fs/cgroup/cpu,cpuacct/compare/cpu.cfs_quota_us": "-1\n",
      "/sys/fs/cgroup/cpu,cpuacct/compare/cpu.cfs_period_us": "100000\n",
    })
    expect(readCpuAllowance(read, cpus(2))).toEqual({
      cores: 0.25,
      source: "/sys/fs/cgroup/cpu,cpuacct/compare/web-2/cpu.cfs_quota_us",
    })
  })

  it("maps a v1 path through the mount's root, as a container without a cgroup namespace sees it", () => {
    const read = machine({
      "/proc/self/cgroup": "3:cpu,cpuacct:/docker/abc\n",
      "/proc/self/mountinfo":
        "31 30 0:28 /docker/abc /sys/fs/cgroup/cpu\\040acct ro - cgroup cgroup rw,cpuacct,cpu\n",
      "/sys/fs/cgroup/cpu acct/cpu.cfs_quota_us": "150000",
      "/sys/fs/cgroup/cpu acct/cpu.cfs_period_us": "100000",
    })
    expect(readCpuAllowance(read, cpus(4)).cores).toBe(1.5)
  })

  it("is the CPUs the process may use without a quota, with a quota above them, or without cgroups", () => {
    const unlimited = machine({
      "/proc/self/cgroup": "0::/\n",
      "/proc/self/mountinfo": V2_MOUNT,
      "/sys/fs/cgroup/cpu.max": "max 100000\n",
    })
    expect(readCpuAllowance(unlimited, cpus(3))).toEqual({ cores: 3, source: "cpus" })
    const generous = machine({
      "/proc/self/cgroup": "0::/\n",
      "/proc/self/mountinfo": V2_MOUNT,
      "/sys/fs/cgroup/cpu.max": "400000 100000\n",
    })
    expect(readCpuAllowance(generous, cpus(2))).toEqual({ cores: 2, source: "cpus" })
    expect(readCpuAllowance(machine({}), cpus(2))).toEqual({ cores: 2, source: "cpus" })
  })
})
