/**
 * The load this replica reports about itself on its answers, ORCA's in-band way: an
 * `endpoint-load-metrics` header such as `TEXT cpu_utilization=0.42, named_metrics.rif=3`, which the
 * balancer reads from every answer it relays.
 */
import { type CpuAllowance, readCpuAllowance } from "./cpu-allowance.ts"

export const LOAD_REPORT_HEADER = "endpoint-load-metrics"

/** How often the process's CPU time is sampled. */
const SAMPLE_MS = 250
/** Utilisation is CPU use over this many samples back: about the last second. */
const WINDOW_SAMPLES = 4
/** The allowance is read again every this many samples (once a second): it can change mid-run. */
const ALLOWANCE_EVERY = 4

interface Sample {
  readonly cpuMicros: number
  readonly at: number
}

const sample = (): Sample => {
  const usage = process.cpuUsage()
  return { cpuMicros: usage.user + usage.system, at: performance.now() }
}

export interface LoadReportsOptions {
  readonly enabled: boolean
  readonly readAllowance?: () => CpuAllowance
}

/**
 * Keeps the CPU utilisation current on an unref'd timer, so writing a report costs a string
 * concatenation and no system call. The CPU time counted is the whole process's, stress workers
 * included, as the cgroup's quota counts it.
 */
export class LoadReports {
  /** Switched at run time by `GET /load-reports?enabled=`: the same replicas, with and without. */
  enabled: boolean
  private readonly readAllowance: () => CpuAllowance
  private current: CpuAllowance
  /** The newest last; at most WINDOW_SAMPLES + 1. */
  private readonly samples: Array<Sample> = [sample()]
  private utilization: number | undefined
  /** The report's fixed part up to `rif`, rebuilt when the utilisation changes. */
  private prefix = "TEXT "
  private ticks = 0
  private readonly timer: NodeJS.Timeout

  constructor(options: LoadReportsOptions) {
    this.enabled = options.enabled
    this.readAllowance = options.readAllowance ?? (() => readCpuAllowance())
    this.current = this.readAllowance()
    this.timer = setInterval(() => this.tick(), SAMPLE_MS)
    this.timer.unref()
  }

  private tick(): void {
    if (++this.ticks % ALLOWANCE_EVERY === 0) this.current = this.readAllowance()
    const now = sample()
    this.samples.push(now)
    if (this.samples.length > WINDOW_SAMPLES + 1) this.samples.shift()
    const oldest = this.samples[0]!
    // A timer held up by a request that blocks the event loop fires late: the elapsed time is measured.
    const wallMs = now.at - oldest.at
    if (wallMs <= 0) return
    const cores = (now.cpuMicros - oldest.cpuMicros) / 1000 / wallMs
    this.utilization = Math.round((cores / this.current.cores) * 1000) / 1000
    this.prefix = `TEXT cpu_utilization=${this.utilization}, `
  }

  /**
   * The header's value for an answer whose head is written now, with `inFlight` requests held by this
   * replica (that answer's own request among them); undefined while reports are off.
   */
  header(inFlight: number): string | undefined {
    return this.enabled ? `${this.prefix}named_metrics.rif=${inFlight}` : undefined
  }

  json() {
    return {
      enabled: this.enabled,
      cpu_utilization: this.utilization ?? null,
      cpu_allowance_cores: Math.round(this.current.cores * 1000) / 1000,
      cpu_allowance_source: this.current.source,
    }
  }

  stop(): void {
    clearInterval(this.timer)
  }
}
