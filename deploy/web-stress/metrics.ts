/** What `/metrics` reports about this process: requests served, CPU and memory, as the workload sees them. */

const MIB = 1024 * 1024
const SAMPLE_MS = 1_000

const mb = (bytes: number) => Math.round((bytes / MIB) * 100) / 100

/** Requests counted by route; unknown paths count as "other" so a scan cannot grow the map. */
export class RequestCounters {
  private readonly byRoute = new Map<string, number>()
  private total = 0
  private inFlight = 0

  started(route: string): void {
    this.total++
    this.inFlight++
    this.byRoute.set(route, (this.byRoute.get(route) ?? 0) + 1)
  }

  finished(): void {
    this.inFlight--
  }

  /** Requests this process holds now: read, and not yet answered to the end. */
  inFlightNow(): number {
    return this.inFlight
  }

  json() {
    return { total: this.total, in_flight: this.inFlight, by_route: Object.fromEntries(this.byRoute) }
  }
}

/**
 * The process's CPU use over the last second, sampled on an unref'd timer: process.cpuUsage counts every
 * thread, stress workers included, so this is what `docker stats` would show for a container of one process.
 */
export class CpuSampler {
  private last = { usage: process.cpuUsage(), at: performance.now() }
  private percent = 0
  private readonly timer: NodeJS.Timeout

  constructor() {
    this.timer = setInterval(() => this.sample(), SAMPLE_MS)
    this.timer.unref()
  }

  private sample(): void {
    const usage = process.cpuUsage()
    const at = performance.now()
    const cpuMicros = usage.user - this.last.usage.user + (usage.system - this.last.usage.system)
    this.percent = (cpuMicros / 1000 / (at - this.last.at)) * 100
    this.last = { usage, at }
  }

  json() {
    const usage = process.cpuUsage()
    const memory = process.memoryUsage()
    return {
      cpu_percent: Math.round(this.percent * 10) / 10,
      cpu_user_s: usage.user / 1e6,
      cpu_system_s: usage.system / 1e6,
      memory_rss_mb: mb(memory.rss),
      heap_used_mb: mb(memory.heapUsed),
      external_mb: mb(memory.external),
    }
  }

  stop(): void {
    clearInterval(this.timer)
  }
}
