/**
 * Whether each replica is healthy: active `GET /health` probes with rise/fall thresholds, plus passive
 * marks from the data plane's connection errors.
 */
import { Context } from "effect"
import type { ReplicaId } from "./domain/Replica.ts"

export interface HealthState {
  readonly healthy: boolean
  readonly consecutiveSuccesses: number
  readonly consecutiveFailures: number
  readonly lastError: string | undefined
  /** When `healthy` last changed (epoch ms); undefined while it never has. */
  readonly changedAt: number | undefined
}

export interface HealthProbeShape {
  /** Replicas never probed yet count as healthy. */
  readonly isHealthy: (replicaId: ReplicaId) => boolean
  readonly state: (replicaId: ReplicaId) => HealthState | undefined
  /** A connection to the replica failed while proxying: counts like a failed probe. */
  readonly reportFailure: (replicaId: ReplicaId, reason: string) => void
  /** Changes on every healthy/unhealthy transition. */
  readonly version: () => number
}

export class HealthProbe extends Context.Tag("swarmguard/HealthProbe")<HealthProbe, HealthProbeShape>() {}
