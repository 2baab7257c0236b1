/**
 * What `docker stats` shows, computed from the Engine's stats frames with the Docker CLI's own formulas
 * (docker/cli cli/command/container/stats_helpers.go), plus the rates, allowance and Swarm identity
 * the balancer needs. Pure functions: the source feeds them frames, the tests feed them fixtures.
 */
import type { ContainerMetrics } from "../../src/domain/AgentReport.ts"
import type { ContainerLimits, ContainerSummary, CpuStats, InterfaceStats, StatsFrame } from "./engine.ts"

const MIB = 1024 * 1024

/**
 * An RFC 3339 time with up to nanoseconds as epoch milliseconds, keeping the sub-millisecond part
 * (rates divide by the gap between two reads one second apart). Undefined for Go's zero time, which
 * the Engine sends in the empty frames of a stopped container.
 */
export const readTimeMs = (read: string): number | undefined => {
  const match = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(read)
  if (match === null) return undefined
  const whole = Date.parse(`${match[1]}${match[3]}`)
  if (!Number.isFinite(whole) || whole <= 0) return undefined
  return whole + (match[2] === undefined ? 0 : Number(`0.${match[2]}`) * 1000)
}

/** The CLI's online CPU count: `online_cpus`, or the length of `percpu_usage` on older Engines. */
export const onlineCpus = (cpu: CpuStats): number =>
  cpu.online_cpus !== undefined && cpu.online_cpus > 0
    ? cpu.online_cpus
    : (cpu.cpu_usage.percpu_usage?.length ?? 0)

/**
 * The CLI's `calculateCPUPercentUnix`: the container's CPU time over the whole system's between two
 * reads, times the online CPUs, so one busy core reads 100. A counter that went backwards (the
 * container restarted) or no system time elapsed reads 0.
 */
export const cpuPercent = (previous: CpuStats, current: CpuStats): number => {
  const cpuDelta = current.cpu_usage.total_usage - previous.cpu_usage.total_usage
  const systemDelta = (current.system_cpu_usage ?? 0) - (previous.system_cpu_usage ?? 0)
  return systemDelta > 0 && cpuDelta > 0 ? (cpuDelta / systemDelta) * onlineCpus(current) * 100 : 0
}

/**
 * The CLI's `calculateMemUsageUnixNoCache`: usage without the inactive page cache, which the kernel
 * reclaims first — `total_inactive_file` on cgroup v1, `inactive_file` on cgroup v2.
 */
export const memoryUsedBytes = (memory: StatsFrame["memory_stats"]): number => {
  const usage = memory?.usage ?? 0
  const stats = memory?.stats ?? {}
  const v1 = stats.total_inactive_file
  if (v1 !== undefined && v1 < usage) return usage - v1
  const v2 = stats.inactive_file ?? 0
  return v2 < usage ? usage - v2 : usage
}

/** The CLI's `calculateMemPercentUnixNoCache`; the limit is the host's memory when none was set. */
export const memoryPercent = (usedBytes: number, limitBytes: number): number =>
  limitBytes > 0 ? (usedBytes / limitBytes) * 100 : 0

/**
 * Megabits per second from one byte counter read twice. A counter that went backwards was reset
 * (the interface or the container was recreated): the bytes since are unknown, so the rate is 0 for
 * that interval rather than negative.
 */
export const mbps = (bytesBefore: number, bytesNow: number, seconds: number): number =>
  seconds > 0 && bytesNow >= bytesBefore ? ((bytesNow - bytesBefore) * 8) / 1e6 / seconds : 0

/**
 * Receive and transmit rates over all interfaces, each interface on its own so a reset of one (a
 * network reconnected) does not zero or distort the others; an interface seen once has no rate yet.
 */
export const networkRates = (
  before: Readonly<Record<string, InterfaceStats>> | undefined,
  now: Readonly<Record<string, InterfaceStats>> | undefined,
  seconds: number,
): { readonly rxMbps: number; readonly txMbps: number } => {
  let rxMbps = 0
  let txMbps = 0
  for (const [name, current] of Object.entries(now ?? {})) {
    const previous = before?.[name]
    if (previous === undefined) continue
    rxMbps += mbps(previous.rx_bytes, current.rx_bytes, seconds)
    txMbps += mbps(previous.tx_bytes, current.tx_bytes, seconds)
  }
  return { rxMbps, txMbps }
}

/** How many CPUs a cpuset such as `0-2,5` names; undefined when empty or unreadable. */
export const cpusetSize = (cpuset: string | null | undefined): number | undefined => {
  if (cpuset === null || cpuset === undefined || cpuset.trim() === "") return undefined
  let count = 0
  for (const part of cpuset.split(",")) {
    const range = /^\s*(\d+)(?:-(\d+))?\s*$/.exec(part)
    if (range === null) return undefined
    const first = Number(range[1])
    const last = range[2] === undefined ? first : Number(range[2])
    if (last < first) return undefined
    count += last - first + 1
  }
  return count
}

/**
 * The container's CPU allowance in cores: `--cpus` (NanoCpus), else a CFS quota over its period (the
 * kernel's default period is 100 ms), else the host's online CPUs; never more than the host has, nor
 * than its cpuset pins it to.
 */
export const cpuAllowanceCores = (limits: ContainerLimits["HostConfig"], hostCpus: number): number => {
  const nano = limits.NanoCpus ?? 0
  const quota = limits.CpuQuota ?? 0
  const period =
    limits.CpuPeriod !== null && limits.CpuPeriod !== undefined && limits.CpuPeriod > 0
      ? limits.CpuPeriod
      : 100_000
  const limit = nano > 0 ? nano / 1e9 : quota > 0 ? quota / period : Number.POSITIVE_INFINITY
  const pinned = cpusetSize(limits.CpusetCpus) ?? Number.POSITIVE_INFINITY
  return Math.min(limit, pinned, hostCpus)
}

/** CPU use as a percentage of the allowance: 100 means the container uses all it may. */
export const cpuPercentOfAllowance = (percent: number, allowanceCores: number): number =>
  allowanceCores > 0 ? percent / allowanceCores : 0

/** What one stats frame says about a container, with the frame's counters kept for the next one. */
export interface Reading {
  /** The Engine's read time of the frame, epoch ms with sub-millisecond part. */
  readonly readMs: number
  readonly cpu: CpuStats
  readonly networks: Readonly<Record<string, InterfaceStats>> | undefined
  readonly cpuPercent: number
  readonly onlineCpus: number
  readonly memoryUsedBytes: number
  readonly memoryLimitBytes: number
  readonly rxMbps: number
  readonly txMbps: number
}

/**
 * The reading of `frame`, its rates taken against `previous` (this source's last frame of the same
 * container). CPU deltas use the Engine's own `precpu_stats` when it has them (a stream's frames after
 * the first, exactly as `docker stats` does), else the previous frame's (a stream's first frame, or a
 * one-shot response). Undefined for frames that carry no sample (a stopped container's).
 */
export const nextReading = (previous: Reading | undefined, frame: StatsFrame): Reading | undefined => {
  const readMs = readTimeMs(frame.read)
  const cpu = frame.cpu_stats
  if (readMs === undefined || cpu === undefined || cpu.system_cpu_usage === undefined) return undefined
  const pre = frame.precpu_stats
  const before = pre?.system_cpu_usage !== undefined && pre.system_cpu_usage > 0 ? pre : previous?.cpu
  const seconds = previous === undefined ? 0 : (readMs - previous.readMs) / 1000
  const { rxMbps, txMbps } = networkRates(previous?.networks, frame.networks, seconds)
  return {
    readMs,
    cpu,
    networks: frame.networks,
    cpuPercent: before === undefined ? 0 : cpuPercent(before, cpu),
    onlineCpus: onlineCpus(cpu),
    memoryUsedBytes: memoryUsedBytes(frame.memory_stats),
    memoryLimitBytes: frame.memory_stats?.limit ?? 0,
    rxMbps,
    txMbps,
  }
}

const SWARM_SERVICE = "com.docker.swarm.service.name"
const SWARM_TASK_ID = "com.docker.swarm.task.id"
const SWARM_TASK_NAME = "com.docker.swarm.task.name"
const COMPOSE_SERVICE = "com.docker.compose.service"

/**
 * The slot of a replicated service's task, from its name `<service>.<slot>.<task id>`; null for a
 * global service's task, whose middle part is the node id.
 */
export const taskSlot = (taskName: string | undefined, taskId: string | undefined): number | null => {
  if (taskName === undefined) return null
  const withoutId =
    taskId !== undefined && taskName.endsWith(`.${taskId}`)
      ? taskName.slice(0, -taskId.length - 1)
      : taskName.slice(0, taskName.lastIndexOf("."))
  const slot = withoutId.slice(withoutId.lastIndexOf(".") + 1)
  return /^\d+$/.test(slot) ? Number(slot) : null
}

/** The container's name without the Engine's leading slash. */
export const containerName = (summary: ContainerSummary): string =>
  (summary.Names?.[0] ?? summary.Id.slice(0, 12)).replace(/^\//, "")

/**
 * Service, task id and slot from the Swarm labels; outside Swarm the Compose service, else the
 * container's own name, so every row has a service to be grouped by.
 */
export const identity = (
  summary: ContainerSummary,
): { readonly service_name: string; readonly task_id: string | null; readonly task_slot: number | null } => {
  const labels = summary.Labels ?? {}
  const taskId = labels[SWARM_TASK_ID]
  return {
    service_name: labels[SWARM_SERVICE] ?? labels[COMPOSE_SERVICE] ?? containerName(summary),
    task_id: taskId ?? null,
    task_slot: taskSlot(labels[SWARM_TASK_NAME], taskId),
  }
}

/** Network name → the container's IPv4 address on it; networks without one (host, none) are left out. */
export const networkAddresses = (summary: ContainerSummary): Record<string, string> => {
  const addresses: Record<string, string> = {}
  for (const [name, network] of Object.entries(summary.NetworkSettings?.Networks ?? {})) {
    if (network.IPAddress) addresses[name] = network.IPAddress
  }
  return addresses
}

/** One report row. `hostCpus` stands in when the frame does not say how many CPUs are online. */
export const containerRow = (
  summary: ContainerSummary,
  limits: ContainerLimits["HostConfig"],
  reading: Reading,
  hostCpus: number,
): ContainerMetrics => {
  const allowance = cpuAllowanceCores(limits, reading.onlineCpus > 0 ? reading.onlineCpus : hostCpus)
  return {
    container_id: summary.Id,
    container_name: containerName(summary),
    ...identity(summary),
    cpu_percent: reading.cpuPercent,
    // MiB, as `docker stats` shows memory.
    memory_mb: reading.memoryUsedBytes / MIB,
    memory_percent: memoryPercent(reading.memoryUsedBytes, reading.memoryLimitBytes),
    network_rx_mbps: reading.rxMbps,
    network_tx_mbps: reading.txMbps,
    networks: networkAddresses(summary),
    cpu_limit_cores: allowance,
    cpu_percent_of_limit: cpuPercentOfAllowance(reading.cpuPercent, allowance),
    sampled_at: Math.floor(reading.readMs),
  }
}
