/**
 * What the comparison needs from a cluster, local or Swarm: its replicas, where each contender
 * listens, and the knobs the scenarios turn (capacity, background stress) and read (CPU).
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

export interface ComparisonTarget {
  readonly kind: Report["target"]
  readonly replicas: ReadonlyArray<string>
  readonly contenders: ReadonlyArray<Contender>
  /** Makes `contender` the one serving, and returns the base URL the load goes to. */
  readonly use: (contender: Contender) => Promise<string>
  /** Gives `replica` this fraction of a full replica's CPU allowance. */
  readonly setCapacity: (replica: string, fraction: number) => Promise<void>
  /** The replica's allowance now, in cores. */
  readonly cores: (replica: string) => number
  /** CPU milliseconds one request of `path` costs a replica. */
  readonly costMs: (path: string) => Promise<number>
  readonly cpuWindow: () => Promise<CpuWindow>
  /** Adds `stepPercent` of one core of background CPU on `replica` each second, `steps` times; resolves to a stop. */
  readonly stress: (replica: string, stepPercent: number, steps: number) => Promise<() => Promise<void>>
  /** Resolves once no replica is still busy with an earlier run's requests. */
  readonly settle: () => Promise<void>
  readonly references: Report["references"]
  readonly notes: ReadonlyArray<string>
  readonly close: () => Promise<void>
}
