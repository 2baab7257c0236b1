/**
 * What the comparison needs from a cluster, local or Swarm: its replicas, where each contender
 * listens, and the knobs the scenarios turn (capacity, background stress, faults, a CPU hog, the
 * replicas' load reports) and read (CPU).
 */
import type { Report } from "./report/Report.ts"

export interface Contender {
  /** An algorithm (`lease`, …) or a reference (`nginx least_conn`, …). */
  readonly name: string
  readonly reference: boolean
}

export interface CpuWindow {
  /** Ends the window: replica → mean CPU over it, percent of one core. */
  readonly stop: () => Promise<Record<string, number>>
}

/** A CPU hog beside a replica: what was actually set up (for the report), and how to end it. */
export interface Neighbour {
  readonly note: string
  readonly stop: () => Promise<void>
}

export interface ComparisonTarget {
  readonly kind: Report["target"]
  readonly replicas: ReadonlyArray<string>
  readonly contenders: ReadonlyArray<Contender>
  /** Makes `contender` the one serving, and returns the base URL the load goes to. */
  readonly use: (contender: Contender) => Promise<string>
  /** CPU time (ms) used so far by the process serving `origin`; undefined where it cannot be read. */
  readonly contenderCpuMs: (origin: string) => number | undefined
  /**
   * A second process of `contender`, independent of the first (its own view of requests in flight),
   * started on first use and stopped by `close`; undefined where the target cannot run two.
   */
  readonly second: ((contender: Contender) => Promise<string>) | undefined
  /** Gives `replica` this fraction of a full replica's CPU allowance. */
  readonly setCapacity: (replica: string, fraction: number) => Promise<void>
  /** The replica's allowance now, in cores. */
  readonly cores: (replica: string) => number
  /** CPU milliseconds one request of `path` costs a replica. */
  readonly costMs: (path: string) => Promise<number>
  /** The replica's own base URL, bypassing every balancer; undefined where it is not reachable. */
  readonly direct: (replica: string) => string | undefined
  readonly cpuWindow: () => Promise<CpuWindow>
  /** Adds `stepPercent` of one core of background CPU on `replica` each second, `steps` times; resolves to a stop. */
  readonly stress: (replica: string, stepPercent: number, steps: number) => Promise<() => Promise<void>>
  /** `replica` answers `share` of its /compute requests with an immediate 500; 0 clears it. */
  readonly setErrorShare: (replica: string, share: number) => Promise<void>
  /**
   * Starts a CPU hog in a cgroup of its own on `replica`'s CPU, with `weight` times its CPU share;
   * undefined where the target cannot.
   */
  readonly neighbour: ((replica: string, weight: number) => Promise<Neighbour>) | undefined
  /** Turns the replicas' own load reports (`endpoint-load-metrics`) on or off. */
  readonly setLoadReports: (enabled: boolean) => Promise<void>
  /** Resolves once no replica is still busy with an earlier run's requests. */
  readonly settle: () => Promise<void>
  readonly references: Report["references"]
  readonly notes: ReadonlyArray<string>
  readonly close: () => Promise<void>
}
