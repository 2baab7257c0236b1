/**
 * The comparison's result, as written to `report.json` and rendered to `report.html` and `report.md`.
 * One row per (scenario, algorithm); snake_case because the file is read by people and other tools.
 * Each row keeps its rounds' raw data (`Round`: counts, windows and an HdrHistogram of latencies), so
 * that every figure and interval can be recomputed from the file alone.
 */

/** A 95 % confidence interval, [low, high], in the unit of the figure it belongs to. */
export type Interval = readonly [number, number]

/**
 * One round of one contender: what a reader needs to recompute the row's figures.
 *
 * `histogram` holds the round's latencies (answered requests, and those abandoned at the timeout
 * counted at the timeout) as an HdrHistogram in microseconds, 1 µs to 1 h at 3 significant digits,
 * in HdrHistogram's V2 compressed format, base64-encoded: `decodeFromCompressedBase64` in
 * hdr-histogram-js, `Histogram.decodeFromCompressedByteBuffer` in Java. The row's percentiles are
 * those of its rounds' histograms added together.
 */
export interface Round {
  /** Requests sent in the measured part of the round, and those of them that failed. */
  readonly requests: number
  readonly errors: number
  /** Latencies in `histogram`. */
  readonly latencies: number
  readonly p99_ms: number
  /** Requests served per replica in each one-second window of this round, oldest first. */
  readonly per_second: ReadonlyArray<Record<string, number>>
  readonly histogram: string
}

/** How long a contender took to move load off a replica that changed (see `ScenarioChange`). */
export interface ShiftTime {
  /** Median over the rounds, in seconds after the change. */
  readonly median_s: number
  /** Bootstrap over rounds drawn with replacement. */
  readonly ci_s: Interval
  readonly per_round_s: ReadonlyArray<number>
  /** Rounds in which the share never fell below the fair share: counted as the rest of the window. */
  readonly unshifted_rounds: number
}

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
  /** Sample size behind the percentiles: latencies recorded over all rounds. */
  readonly latencies: number
  readonly p50_ms: number
  readonly p95_ms: number
  readonly p99_ms: number
  /** 95 % intervals of the percentiles, from a two-level bootstrap (rounds, then requests within them). */
  readonly p50_ci_ms: Interval
  readonly p95_ci_ms: Interval
  readonly p99_ci_ms: Interval
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
  /**
   * CPU time the contender's own process(es) spent per request over the measured windows, ms; null
   * where it cannot be read (Swarm). On a machine the replicas share, what a balancer burns is CPU
   * they do not get.
   */
  readonly balancer_cpu_ms: number | null
  /** Errors ÷ requests over all rounds, and its 95 % interval (the same two-level bootstrap). */
  readonly error_share: number
  readonly error_share_ci: Interval
  /** Requests served per replica in each one-second window, the rounds one after another. */
  readonly per_second: ReadonlyArray<Record<string, number>>
  /** Latency percentiles per one-second window (ms), oldest first, for the latency-over-time chart. */
  readonly p99_per_second_ms: ReadonlyArray<number>
  /** Each round's p99, in the order the rounds ran: a first round far above the rest was not warm. */
  readonly p99_per_round_ms: ReadonlyArray<number>
  readonly rounds: ReadonlyArray<Round>
  /** Present when the scenario changes a replica mid-run. */
  readonly shift?: ShiftTime
}

/**
 * PASS when the whole interval meets the limit, MISS when the whole interval misses it, inconclusive
 * when it straddles the limit; figures without an interval are judged on the measured value.
 */
export type Verdict = "PASS" | "MISS" | "inconclusive" | "not evaluated"

export interface Goal {
  readonly name: string
  /** NaN (null in report.json) when there was nothing to measure, e.g. no reference to compare with. */
  readonly measured: number
  /** The measured figure's 95 % bootstrap interval; null for figures taken as they are (counts, CPU). */
  readonly interval: Interval | null
  readonly limit: number
  /** "≤" or "≥": how `measured` must compare with `limit`. */
  readonly comparison: "≤" | "≥"
  readonly verdict: Verdict
  readonly note: string
}

/** Whether the run's first measured round was still cold: its p99 against the same contender's other rounds. */
export interface FirstRoundCheck {
  readonly scenario: string
  readonly algorithm: Contender
  readonly p99_ms: number
  /** Median p99 of that contender's other rounds in the scenario. */
  readonly others_median_ms: number
  /** p99_ms is more than twice others_median_ms. */
  readonly outlier: boolean
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
  /** Absent when no contender ran more than one round. */
  readonly first_round?: FirstRoundCheck
  /** Anything a reader must know to trust the figures (capacity emulation, skipped parts). */
  readonly notes: ReadonlyArray<string>
}
