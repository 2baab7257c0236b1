/**
 * What the stress jobs ask of each resource at a given moment. Pure functions of the jobs and a time,
 * so ramps, sums and expiry are tested without clocks or processes.
 */

export interface Load {
  /** Percent of one core, as `docker stats` counts it: 150 is one and a half cores. */
  readonly cpuPercent: number
  /** MiB held. */
  readonly memoryMb: number
  /** Megabits (10^6 bits) per second sent. */
  readonly networkMbps: number
}

export type Resource = keyof Load

export const noLoad: Load = { cpuPercent: 0, memoryMb: 0, networkMbps: 0 }

export type JobKind = "cpu" | "memory" | "network" | "combined" | "incremental"

/** One stress request: its target, reached linearly over `rampMs`, held until `durationMs` after its start. */
export interface Job {
  readonly id: number
  readonly kind: JobKind
  readonly target: Load
  /** Milliseconds on a monotonic clock. */
  readonly startedAt: number
  readonly rampMs: number
  /** From the start, ramp included. */
  readonly durationMs: number
}

export const isExpired = (job: Job, now: number): boolean => now - job.startedAt >= job.durationMs

/** How far the job has ramped: 0 at its start, 1 once `rampMs` has passed. */
export const rampProgress = (job: Job, now: number): number =>
  job.rampMs <= 0 ? 1 : Math.min(1, Math.max(0, (now - job.startedAt) / job.rampMs))

/** The sum of every live job's ramped target. */
export const loadAt = (jobs: ReadonlyArray<Job>, now: number): Load => {
  let cpuPercent = 0
  let memoryMb = 0
  let networkMbps = 0
  for (const job of jobs) {
    if (isExpired(job, now)) continue
    const progress = rampProgress(job, now)
    cpuPercent += job.target.cpuPercent * progress
    memoryMb += job.target.memoryMb * progress
    networkMbps += job.target.networkMbps * progress
  }
  return { cpuPercent, memoryMb, networkMbps }
}

const isEmpty = (load: Load): boolean =>
  load.cpuPercent === 0 && load.memoryMb === 0 && load.networkMbps === 0

/**
 * The jobs with `resource` taken out of their targets, and the jobs left asking for nothing dropped:
 * what `/stress/cpu` and its kin do before they set their resource anew.
 */
export const withoutResource = (jobs: ReadonlyArray<Job>, resource: Resource): Array<Job> =>
  jobs
    .map((job) => (job.target[resource] === 0 ? job : { ...job, target: { ...job.target, [resource]: 0 } }))
    .filter((job) => !isEmpty(job.target))
