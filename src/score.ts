/** The PRD's load score: weighted CPU, memory and network use, each as a percentage. */
import type { ReplicaMetrics } from "./MetricsSource.ts"

export interface ScoreWeights {
  readonly cpuWeight: number
  readonly memoryWeight: number
  readonly networkWeight: number
  readonly networkCapacityMbps: number
}

export const loadScore = (metrics: ReplicaMetrics, weights: ScoreWeights): number =>
  metrics.cpuPercent * weights.cpuWeight +
  metrics.memoryPercent * weights.memoryWeight +
  (metrics.networkMbps / weights.networkCapacityMbps) * 100 * weights.networkWeight
