/**
 * Passive outlier ejection, as Envoy's `consecutive_5xx`/`consecutive_gateway_failure`: the data plane
 * reports how each exchange with a replica ended, and a replica failing too many in a row is taken out
 * of rotation for a while, longer each time it is ejected again. Health probes only see `/health`; this
 * sees the traffic itself, so a replica that answers its probe but fails requests still leaves.
 */
import { Context } from "effect"
import type { ReplicaId } from "./domain/Replica.ts"

/** Why an exchange failed: the connection, a reset before the answer, a timeout, or a 5xx answer. */
export type ExchangeFailure = "connect" | "reset" | "timeout" | "5xx"

export interface EjectionState {
  readonly ejected: boolean
  /** Failures in a row so far. */
  readonly consecutiveFailures: number
  /** Ejections that still count towards the next one's length. */
  readonly ejections: number
  /** When the current ejection ends (epoch ms); undefined while admitted. */
  readonly ejectedUntil: number | undefined
  /** When it was last readmitted (epoch ms); undefined if it never was ejected. */
  readonly readmittedAt: number | undefined
}

export interface OutlierDetectorShape {
  /** An exchange succeeded; synchronous, it runs for every response. */
  readonly reportSuccess: (replicaId: ReplicaId) => void
  readonly reportFailure: (replicaId: ReplicaId, failure: ExchangeFailure) => void
  readonly isEjected: (replicaId: ReplicaId) => boolean
  readonly state: (replicaId: ReplicaId) => EjectionState | undefined
  /** Every ejection since start. */
  readonly totalEjections: () => number
  /** Changes whenever a replica is ejected or readmitted. */
  readonly version: () => number
}

export class OutlierDetector extends Context.Tag("swarmguard/OutlierDetector")<
  OutlierDetector,
  OutlierDetectorShape
>() {}
