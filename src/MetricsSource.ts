/** The latest resource metrics of each replica, with the time they were sampled. */
import { Context } from "effect"
import type { ReplicaId } from "./domain/Replica.ts"

export interface ReplicaMetrics {
  /** CPU use as a percentage of the replica's CPU allowance. */
  readonly cpuPercent: number
  readonly memoryPercent: number
  /** Received plus sent, in megabits per second. */
  readonly networkMbps: number
  /** When the sample was taken, on this process's clock (epoch ms). */
  readonly sampledAt: number
}

export interface MetricsSourceShape {
  readonly get: (replicaId: ReplicaId) => ReplicaMetrics | undefined
  /** Changes whenever `get` may answer differently, so readers can copy the samples once per change. */
  readonly version: () => number
  /** Failed polls per source (agent node) since start; empty when nothing is polled. */
  readonly pollFailures: () => Readonly<Record<string, number>>
}

export class MetricsSource extends Context.Tag("swarmguard/MetricsSource")<
  MetricsSource,
  MetricsSourceShape
>() {}
