/**
 * Background stress: the live jobs, and a 100 ms tick that sums their ramped targets and makes the CPU
 * burners, the memory ballast and the network sender match.
 */
import type { Endpoint } from "../config.ts"
import { CpuBurners } from "./cpu.ts"
import {
  isExpired,
  type Job,
  type JobKind,
  type Load,
  loadAt,
  noLoad,
  type Resource,
  rampProgress,
  withoutResource,
} from "./load.ts"
import { MemoryBallast } from "./memory.ts"
import { NetworkLoad, type NetworkStatus } from "./network.ts"

const TICK_MS = 100

export interface StressRequest {
  readonly target: Load
  readonly rampMs: number
  readonly durationMs: number
}

const round = (value: number) => Math.round(value * 100) / 100

const loadJson = (load: Load) => ({
  cpu_percent: round(load.cpuPercent),
  memory_mb: round(load.memoryMb),
  network_mbps: round(load.networkMbps),
})

const jobJson = (job: Job, now: number) => ({
  id: job.id,
  kind: job.kind,
  ...loadJson(job.target),
  ramp_s: job.rampMs / 1000,
  duration_s: job.durationMs / 1000,
  elapsed_s: round((now - job.startedAt) / 1000),
  remaining_s: round(Math.max(0, job.startedAt + job.durationMs - now) / 1000),
  ramp_progress: round(rampProgress(job, now)),
})

export type StressStatus = ReturnType<Stress["status"]>

export class Stress {
  private jobs: Array<Job> = []
  private nextId = 1
  private timer: NodeJS.Timeout | undefined
  private readonly cpu: CpuBurners
  private readonly memory = new MemoryBallast()
  private readonly network: NetworkLoad

  constructor(options: { readonly maxCpuPercent: number; readonly networkTarget: Endpoint | undefined }) {
    this.cpu = new CpuBurners(options.maxCpuPercent)
    this.network = new NetworkLoad(options.networkTarget)
  }

  /** Replaces whatever stress `resource` was under with this job's (`/stress/cpu`, `/memory`, `/network`). */
  replace(resource: Resource, kind: JobKind, request: StressRequest): Job {
    this.jobs = withoutResource(this.jobs, resource)
    return this.add(kind, request)
  }

  /** Replaces all stress with this job (`/stress/combined`). */
  replaceAll(kind: JobKind, request: StressRequest): Job {
    this.jobs = []
    return this.add(kind, request)
  }

  /** Adds this job to whatever runs already; each job ends on its own (`/stress/incremental`). */
  add(kind: JobKind, request: StressRequest): Job {
    const job: Job = { id: this.nextId++, kind, startedAt: performance.now(), ...request }
    this.jobs.push(job)
    this.tick()
    return job
  }

  /** Ends every job and releases what they held; returns how many there were. */
  stop(): number {
    const count = this.jobs.length
    this.jobs = []
    this.tick()
    return count
  }

  status() {
    // Applies expiry first, so the status never shows a finished job's burners still running.
    this.tick()
    const now = performance.now()
    const live = this.jobs.filter((job) => !isExpired(job, now))
    const network: NetworkStatus = this.network.status()
    return {
      active: live.length > 0,
      jobs: live.map((job) => jobJson(job, now)),
      /** What the jobs ask for now, ramps applied. */
      target: loadJson(live.length > 0 ? loadAt(live, now) : noLoad),
      /** What is being consumed to meet it. */
      applied: {
        ...this.cpu.status(),
        memory_mb: this.memory.heldMb(),
        ...network,
        network_loopback_received_bytes: this.network.loopbackReceived(),
      },
    }
  }

  async close(): Promise<void> {
    this.jobs = []
    clearInterval(this.timer)
    this.timer = undefined
    this.memory.setMb(0)
    await Promise.all([this.cpu.close(), this.network.close()])
  }

  private tick(): void {
    const now = performance.now()
    this.jobs = this.jobs.filter((job) => !isExpired(job, now))
    const load = loadAt(this.jobs, now)
    this.cpu.setPercent(load.cpuPercent)
    this.memory.setMb(load.memoryMb)
    this.network.setMbps(load.networkMbps, now)
    // The tick runs only while there is stress, so an idle replica is really idle.
    if (this.jobs.length > 0 && this.timer === undefined) this.timer = setInterval(() => this.tick(), TICK_MS)
    if (this.jobs.length === 0 && this.timer !== undefined) {
      clearInterval(this.timer)
      this.timer = undefined
    }
  }
}
