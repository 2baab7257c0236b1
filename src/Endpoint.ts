/**
 * Everything the balancer knows about one replica, in one object: who it is, whether it may take
 * traffic (health, ejection, slow start), what it is doing (requests in flight, latest metrics), what
 * was routed to it, and its upstream connections. The replica pool creates one when discovery adds a
 * replica and retires it when discovery removes it, so the state goes with the replica, at once.
 *
 * The services that own a rule (HealthProbe, OutlierDetector, LeaseStore, the Selector) keep their
 * per-replica state here rather than in maps keyed by replica id; the admin views read it from here.
 * See docs/ARCHITECTURE.md, "The endpoint".
 */
import type { LoadReport } from "./domain/LoadReport.ts"
import type { Replica, ReplicaId } from "./domain/Replica.ts"
import type { ReplicaMetrics } from "./MetricsSource.ts"

export interface HealthState {
  healthy: boolean
  consecutiveSuccesses: number
  consecutiveFailures: number
  lastError: string | undefined
  /** When `healthy` last changed (epoch ms); undefined while it never has. */
  changedAt: number | undefined
}

export interface EjectionState {
  /** Failures in a row so far. */
  consecutiveFailures: number
  /** Ejections that still count towards the next one's length. */
  ejections: number
  /** When the current ejection ends (epoch ms); undefined while admitted. */
  ejectedUntil: number | undefined
  /** When it was last readmitted (epoch ms); undefined if it never was ejected. */
  readmittedAt: number | undefined
}

/**
 * How an attempt on a replica ended: its status class, `error` when the replica failed before
 * answering (refused, reset, timed out), `aborted` when the client left before the answer.
 */
export const OUTCOMES = ["2xx", "3xx", "4xx", "5xx", "error", "aborted"] as const
export type Outcome = (typeof OUTCOMES)[number]

/** What the data plane needs of an upstream connection pool to retire it. */
export interface Closeable {
  /** Closes once the requests under way are done. */
  readonly close: () => Promise<unknown>
  /** Closes now, failing whatever is under way. */
  readonly destroy: () => Promise<unknown>
}

/** A replica's own load report as this balancer received it. */
export interface ReceivedLoadReport {
  readonly report: LoadReport
  /** Epoch ms. */
  readonly receivedAt: number
  /**
   * This balancer's `active` count for the replica when the report arrived, the answering exchange
   * included: what this balancer sends or finishes afterwards moves the replica's count by as much,
   * which is how a report stays useful between two answers.
   */
  readonly activeAtReceipt: number
}

/** An exchange sent to the replica whose answer has not begun. */
export interface PendingExchange {
  /** Epoch ms, on the clock service. */
  readonly sentAt: number
}

export class Endpoint {
  /** Requests and upgrades in flight to it: the leases it holds. */
  active = 0
  /**
   * Exchanges awaiting its answer, oldest first (a Set iterates in insertion order). How long the
   * oldest has waited is a latency the replica has already shown before any answer reports it: a
   * replica stuck on an expensive request, or suddenly slowed, is seen while it is so.
   */
  readonly pending = new Set<PendingExchange>()
  readonly health: HealthState = {
    healthy: true,
    consecutiveSuccesses: 0,
    consecutiveFailures: 0,
    lastError: undefined,
    changedAt: undefined,
  }
  readonly ejection: EjectionState = {
    consecutiveFailures: 0,
    ejections: 0,
    ejectedUntil: undefined,
    readmittedAt: undefined,
  }
  /**
   * Exchanges under way with it (Attempts not yet ended), which its cap counts. Unlike `active`, a
   * lease that outlives `LEASE_DURATION` (a request slower than that) does not lower it: the cap
   * holds however long a request takes.
   */
  inFlight = 0
  /** The most exchanges it may have in flight from this balancer (`REPLICA_MAX_REQUESTS`); 0: any. */
  maxRequests = 0
  /** `weight` scaled by slow start's ramp; the pool sets it whenever it rebuilds the candidates. */
  effectiveWeight = 1
  /** Smooth weighted rotation's running credit (NGINX's `current_weight`), for uneven weights. */
  rotationCredit = 0
  /** The latest resource sample its agent reported, or undefined without one. */
  metrics: ReplicaMetrics | undefined = undefined
  /** The load it last reported itself in a response (`endpoint-load-metrics`), and when. */
  loadReport: ReceivedLoadReport | undefined = undefined
  /** Decisions that chose it. */
  picks = 0
  /** Attempts it was sent, by how they ended; indexed like `OUTCOMES`. */
  readonly outcomes: Array<number> = OUTCOMES.map(() => 0)
  /**
   * What the pool's selector keeps about it (a latency estimate, a projection), as Envoy gives each
   * load-balancing policy its own data on the host. Only the selector reads it.
   */
  selection: unknown = undefined
  /** The upstream connection pool to it, opened on first use and closed when it is retired. */
  upstream: Closeable | undefined = undefined
  /** Discovery removed it; requests already on their way finish, nothing new is sent. */
  retired = false

  constructor(
    readonly replica: Replica,
    /** When it joined the pool (epoch ms); minus infinity for the pool's first replicas. */
    readonly joinedAt: number,
    /** Its share of traffic relative to the others'; 0 drains it. Discovery may change it. */
    public weight = 1,
  ) {}

  get id(): ReplicaId {
    return this.replica.id
  }

  /** It may take one more request: below its `maxRequests`, or without one. */
  get hasRoom(): boolean {
    return this.maxRequests === 0 || this.inFlight < this.maxRequests
  }

  get ejected(): boolean {
    return this.ejection.ejectedUntil !== undefined
  }

  /** When it last came into rotation: it joined, turned healthy, or was readmitted. */
  get inSince(): number {
    return Math.max(
      this.joinedAt,
      this.health.changedAt ?? Number.NEGATIVE_INFINITY,
      this.ejection.readmittedAt ?? Number.NEGATIVE_INFINITY,
    )
  }
}
