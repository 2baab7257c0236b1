/**
 * One exchange with one endpoint, from the routing decision to its end. It holds the endpoint's lease
 * and has the few verbs an exchange can end with; each reports to leases, stats, outliers, health and
 * the selector here, once, so the transports (proxied requests, upgrades) only move bytes. See
 * docs/ARCHITECTURE.md, "The request's path".
 */
import { performance } from "node:perf_hooks"
import { parseLoadReport } from "./domain/LoadReport.ts"
import type { Endpoint, PendingExchange } from "./Endpoint.ts"
import type { HealthProbeShape } from "./HealthProbe.ts"
import type { Lease, LeaseStoreShape } from "./LeaseStore.ts"
import type { ExchangeFailure, OutlierDetectorShape } from "./OutlierDetector.ts"
import type { FailureKind, RoutingStatsShape } from "./RoutingStats.ts"
import type { RetryBudget } from "./retry-budget.ts"
import type { SelectorShape } from "./Selector.ts"

/** Which try of a request this is: whether it may be retried, and which endpoint a retry avoids. */
export type Try =
  | { readonly _tag: "First"; readonly retryable: boolean }
  | { readonly _tag: "Retry"; readonly avoid: Endpoint }

/** Idempotent requests without a body may be sent again once; the rest may not. */
export const FIRST_RETRYABLE: Try = { _tag: "First", retryable: true }
export const FIRST_FINAL: Try = { _tag: "First", retryable: false }

/** The balancer's own answer when there is nowhere (more) to send a request, with its JSON body. */
export interface Refusal {
  readonly status: 400 | 404 | 413 | 429 | 502 | 503 | 504
  /** Sent as `Retry-After` (whole seconds): when trying again may succeed. */
  readonly retryAfterSeconds?: number
  /** Further response headers, as name/value pairs in one flat list (rate-limit headers). */
  readonly headers?: ReadonlyArray<string>
  /** `error` names the kind, `message` says it to a person; details may follow. */
  readonly body: { readonly error: string; readonly message: string; readonly [detail: string]: unknown }
}

/**
 * How an exchange failed, as the transport saw it: no connection (`refused`, `connect_timeout`), the
 * connection broke (`reset`), no response header in time (`response_timeout`), the body stalled
 * (`idle_timeout`), or anything else.
 */
export type UpstreamFailureKind =
  | "refused"
  | "connect_timeout"
  | "reset"
  | "response_timeout"
  | "idle_timeout"
  | "other"

export interface UpstreamFailure {
  readonly kind: UpstreamFailureKind
  /** Whether the request may be sent again elsewhere, should nothing of the answer have arrived. */
  readonly retryable: boolean
  /** `CODE: message`, for the client's error body and the health state. */
  readonly reason: string
}

const UNREACHABLE: ReadonlySet<UpstreamFailureKind> = new Set(["refused", "connect_timeout"])
const TIMED_OUT: ReadonlySet<UpstreamFailureKind> = new Set([
  "connect_timeout",
  "response_timeout",
  "idle_timeout",
])

const outlierFailureOf = (kind: UpstreamFailureKind): ExchangeFailure =>
  UNREACHABLE.has(kind) ? "connect" : TIMED_OUT.has(kind) ? "timeout" : "reset"

/** The services an attempt reports to, and how to route a retry; built once by the Router. */
export interface AttemptContext {
  readonly stats: RoutingStatsShape
  readonly leases: LeaseStoreShape
  readonly outliers: OutlierDetectorShape
  readonly health: HealthProbeShape
  readonly observe: SelectorShape["observe"]
  readonly retryBudget: RetryBudget
  readonly targetService: string
  /** Whether a retry would have another endpoint to go to: otherwise it spends no budget. */
  readonly hasOtherCandidate: (endpoint: Endpoint) => boolean
  readonly retry: (avoid: Endpoint) => Attempt | Refusal
  /** An exchange ended and its lease is released: a queued request may take the place. */
  readonly released: () => void
  /** The clock service's time (epoch ms), which the admin views measure ages against. */
  readonly now: () => number
}

export class Attempt implements PendingExchange {
  // The data plane reads the monotonic clock directly: a fiber per exchange would cost more than it.
  private readonly dispatchedAt = performance.now()
  /** On the clock service, which the selector measures how long it has been waiting against. */
  readonly sentAt: number
  /** The replica's final status, 0 until it answered. */
  private status = 0
  private observed = false
  private ended = false

  constructor(
    private readonly context: AttemptContext,
    readonly endpoint: Endpoint,
    private lease: Lease,
    readonly tried: Try,
    /** Chosen among every known endpoint because none was healthy. */
    readonly panic: boolean,
  ) {
    this.sentAt = context.now()
    endpoint.pending.add(this)
    endpoint.inFlight++
  }

  /** The replica's answer has begun (its status line and headers). */
  get responded(): boolean {
    return this.status !== 0
  }

  /** The lease is released: nothing more is reported. */
  get over(): boolean {
    return this.ended
  }

  /** Tells the selector how the replica did, once; never for an exchange the client abandoned. */
  private report(ok: boolean): void {
    if (this.observed) return
    this.observed = true
    this.endpoint.pending.delete(this)
    this.context.observe(this.endpoint, performance.now() - this.dispatchedAt, ok)
  }

  private end(): boolean {
    if (this.ended) return false
    this.ended = true
    this.endpoint.pending.delete(this)
    this.endpoint.inFlight--
    this.context.leases.release(this.lease)
    this.context.released()
    return true
  }

  /** The replica answered with its final status (1xx interim answers are not final). */
  respond(status: number): void {
    if (this.ended) return
    this.status = status
    this.endpoint.pending.delete(this)
    this.context.stats.recordResponse(this.endpoint, status)
    if (status >= 500) this.context.outliers.reportFailure(this.endpoint, "5xx")
    else this.context.outliers.reportSuccess(this.endpoint)
  }

  /** The replica's answer carried a load report (`endpoint-load-metrics`): it is kept on the endpoint. */
  reportLoad(header: string): void {
    const report = parseLoadReport(header)
    if (report === undefined) this.context.stats.recordRejectedLoadReport()
    else {
      this.endpoint.loadReport = {
        report,
        receivedAt: this.context.now(),
        activeAtReceipt: this.endpoint.active,
      }
    }
  }

  /**
   * The exchange the selector judges is over while the lease stays held: an upgrade's handshake,
   * after which the connection lives on under the same lease.
   */
  settle(): void {
    if (!this.ended) this.report(this.status < 500)
  }

  /** The lease outlives `LEASE_DURATION` rightly (an upgraded connection): it is renewed. */
  renew(): void {
    if (!this.ended) this.lease = this.context.leases.renew(this.lease)
  }

  /** The exchange ended as it should: the answer is complete, or the tunnel closed. */
  finish(): void {
    if (this.end()) this.report(this.status < 500)
  }

  /** The client went away first: it says nothing about the replica. */
  abandon(): void {
    if (!this.end()) return
    this.context.stats.recordFailure("client_abort")
    if (!this.responded) this.context.stats.recordNoResponse(this.endpoint, "aborted")
  }

  /** The request cannot go on for a fault of the client's own (an unsendable request, a body too large). */
  refuseForClient(kind: FailureKind): void {
    if (!this.end()) return
    if (!this.responded) this.context.stats.recordNoResponse(this.endpoint, "aborted")
    this.context.stats.recordFailure(kind)
  }

  /**
   * The replica failed. Reported to the selector, the outlier detector and (when it could not be
   * reached) health; then, for a first try that may be retried and had no answer yet, the retry on
   * another endpoint if the retry budget allows; otherwise the answer for the client. Undefined when
   * the attempt was already over (the client left first).
   */
  fail(failure: UpstreamFailure): Attempt | Refusal | undefined {
    if (!this.end()) return undefined
    const { context, endpoint } = this
    this.report(false)
    if (!this.responded) context.stats.recordNoResponse(endpoint, "error")
    const unreachable = UNREACHABLE.has(failure.kind)
    if (unreachable) context.health.reportFailure(endpoint, failure.reason)
    context.outliers.reportFailure(endpoint, outlierFailureOf(failure.kind))
    if (this.mayRetry(failure)) {
      if (context.retryBudget.withdraw()) {
        context.stats.recordRetry()
        return context.retry(endpoint)
      }
      context.stats.recordRetryDenied()
    }
    const timedOut = TIMED_OUT.has(failure.kind)
    context.stats.recordFailure(timedOut ? "upstream_timeout" : "upstream_error")
    if (unreachable && this.panic) {
      // Every replica is unhealthy and this one could not be reached either (RFC 9110 §15.6.4).
      const message = `every replica of ${context.targetService} is down`
      return { status: 503, body: { error: "no_healthy_replica", message } }
    }
    const error = timedOut ? "upstream_timeout" : "upstream_error"
    const message = `replica ${endpoint.replica.name} failed: ${failure.reason}`
    return { status: timedOut ? 504 : 502, body: { error, message } }
  }

  /** A retry needs a first try that allows one, no answer yet, and another endpoint to go to. */
  private mayRetry(failure: UpstreamFailure): boolean {
    const { tried } = this
    return (
      failure.retryable &&
      tried._tag === "First" &&
      tried.retryable &&
      !this.responded &&
      this.context.hasOtherCandidate(this.endpoint)
    )
  }
}
