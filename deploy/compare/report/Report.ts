/**
 * The comparison's result, as written to `report.json` and rendered to `report.html` and `report.md`.
 * One row per (scenario, algorithm); snake_case because the file is read by people and other tools.
 */

/** Where the load was sent: the balancer with one algorithm, or a reference load balancer. */
export type Contender = string

export interface Row {
  readonly scenario: string
  /** `lease`, `metrics`, `hybrid`, `round-robin`, `adaptive`, or a reference such as `nginx least_conn`. */
  readonly algorithm: Contender
  /** Whether `algorithm` is a reference load balancer (NGINX, HAProxy) rather than SwarmGuard. */
  readonly reference: boolean
  /** Requests sent (arrival rate × duration) and answered with any status. */
  readonly requests: number
  /** Requests that failed: connection errors, timeouts and non-2xx answers. */
  readonly errors: number
  /** The arrival rate the load generator held, requests per second. */
  readonly rate_rps: number
  readonly p50_ms: number
  readonly p95_ms: number
  readonly p99_ms: number
  readonly max_ms: number
  /** Replica name → fraction of the answered requests it served. */
  readonly share: Record<string, number>
  /** Replica name → mean CPU during the run, percent of one core. */
  readonly cpu: Record<string, number>
  /** The busiest replica's CPU, percent of its own CPU allowance (100 = saturated). */
  readonly cpu_max: number
  /**
   * Coefficient of variation (standard deviation ÷ mean) of per-replica CPU taken as percent of each
   * one's allowance, itself in percent: 15 means the spread is 15 % of the mean.
   */
  readonly cpu_cv: number
  /** Requests served per replica in each one-second window of the run, oldest first. */
  readonly per_second: ReadonlyArray<Record<string, number>>
  /** Latency percentiles per one-second window (ms), oldest first, for the latency-over-time chart. */
  readonly p99_per_second_ms: ReadonlyArray<number>
}

export interface Goal {
  readonly name: string
  /** NaN (null in report.json) when there was nothing to measure, e.g. no reference to compare with. */
  readonly measured: number
  readonly limit: number
  /** "≤" or "≥": how `measured` must compare with `limit`. */
  readonly comparison: "≤" | "≥"
  /** undefined when the goal could not be evaluated (e.g. no reference installed). */
  readonly pass: boolean | undefined
  readonly note: string
}

/** A change to one replica partway through the measured window (the degradation scenario). */
export interface ScenarioChange {
  /** Seconds into the measured window at which the change is made. */
  readonly at_s: number
  readonly replica: string
  /** The replica's share of the requests it would get if every balancer split them by capacity after the change. */
  readonly fair_share_after: number
}

export interface Scenario {
  readonly name: string
  /** One line: what the scenario does and what it tells good balancers from lucky ones. */
  readonly description: string
  /** Present in scenarios that change a replica mid-run; the rows then carry its shift time. */
  readonly change?: ScenarioChange
  /** Replica name → its CPU allowance in cores. */
  readonly replicas: Record<string, number>
  readonly rate_rps: number
  readonly duration_s: number
}

export interface Report {
  readonly generated_at: string
  readonly target: "local" | "swarm"
  readonly machine: {
    readonly cpus: number
    readonly node: string
    readonly load_average: ReadonlyArray<number>
  }
  readonly scenarios: ReadonlyArray<Scenario>
  /** Reference load balancers: version when used, or why they were not. */
  readonly references: Record<string, { readonly used: boolean; readonly detail: string }>
  readonly rows: ReadonlyArray<Row>
  readonly goals: ReadonlyArray<Goal>
  /** Anything a reader must know to trust the figures (capacity emulation, skipped parts). */
  readonly notes: ReadonlyArray<string>
}
