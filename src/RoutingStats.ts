/**
 * What the balancer did, counted on the data plane (plain counters, no allocation per request) and
 * summarised as the PRD's `GET /metrics` JSON. What each replica was sent is counted on its endpoint,
 * and leaves with it.
 */
import { Context, Effect, Layer } from "effect"
import type { ReplicaId } from "./domain/Replica.ts"
import { type Endpoint, OUTCOMES } from "./Endpoint.ts"
import type { LocalityOutcome } from "./locality.ts"
import { ReplicaPool } from "./ReplicaPool.ts"
import type { Decision } from "./Selector.ts"

/** Requests per second is averaged over this many trailing seconds. */
const RATE_WINDOW_SECONDS = 10

const ERROR = OUTCOMES.indexOf("error")
const ABORTED = OUTCOMES.indexOf("aborted")

/**
 * Upper bounds of the routing-time buckets, in seconds: a decision takes microseconds, one that takes
 * milliseconds is the anomaly worth seeing.
 */
export const ROUTING_TIME_BOUNDS_SECONDS = [
  0.000_002_5, 0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005,
  0.01,
] as const

/** Routing times: per-bucket counts (not cumulative), the last one above every bound. */
export interface RoutingTimes {
  readonly bucketCounts: ReadonlyArray<number>
  readonly sumSeconds: number
  readonly count: number
}

export type FailureKind =
  | "upstream_error"
  | "upstream_timeout"
  | "no_replica"
  | "client_abort"
  | "request_too_large"
  | "bad_request"
  /** Every replica was at its cap and the queue was full, or the wait was longer than allowed. */
  | "queue_full"
  | "queue_timeout"
  /** No route's rule matched (counted by the route table, not by a route's stats). */
  | "no_route"

export interface StatsSnapshot {
  readonly total_requests: number
  readonly requests_per_second: number
  readonly routing_decisions: Record<ReplicaId, number>
  readonly avg_routing_time_ms: number
  /** Share of metrics-reading decisions made with fresh metrics; null when none read metrics. */
  readonly cache_hit_rate: number | null
  readonly fallback_decisions: number
  readonly panic_decisions: number
  readonly retries: number
  /** Retries the retry budget did not allow. */
  readonly retries_denied: number
  readonly responses: Record<string, number>
  readonly failures: Record<FailureKind, number>
  /** `endpoint-load-metrics` headers that were not a load report (and so were not used). */
  readonly load_reports_rejected: number
  /** With `LOCALITY`: decisions that stayed local, and those that spilled past the local replicas. */
  readonly locality: { readonly local: number; readonly spilled: number }
  readonly uptime_seconds: number
}

export interface RoutingStatsShape {
  /** A request arrived (counted before routing, so refused requests count too); returns the count. */
  readonly recordRequest: () => number
  readonly recordDecision: (decision: Decision, routingTimeMs: number, panic: boolean) => void
  readonly recordRetry: () => void
  readonly recordRetryDenied: () => void
  /** The endpoint an attempt was routed to answered with `status` (the final one, not 1xx). */
  readonly recordResponse: (endpoint: Endpoint, status: number) => void
  /** An attempt ended without a response: the replica failed, or the client left first. */
  readonly recordNoResponse: (endpoint: Endpoint, outcome: "error" | "aborted") => void
  readonly recordFailure: (kind: FailureKind) => void
  readonly recordRejectedLoadReport: () => void
  readonly recordLocality: (outcome: LocalityOutcome) => void
  readonly routingTimes: () => RoutingTimes
  /** Decisions that read metrics, and how many of those found them fresh (`cache_hit_rate`). */
  readonly metricsReads: () => { readonly decisions: number; readonly fresh: number }
  readonly snapshot: () => StatsSnapshot
}

export class RoutingStats extends Context.Tag("swarmguard/RoutingStats")<RoutingStats, RoutingStatsShape>() {
  static readonly layer = Layer.effect(
    RoutingStats,
    Effect.gen(function* () {
      const pool = yield* ReplicaPool
      // Data-plane counters read the clock service synchronously (TestClock in tests).
      const clock = yield* Effect.clock
      const startedAt = clock.unsafeCurrentTimeMillis()
      let total = 0
      let routingTimeMs = 0
      let routed = 0
      let metricsDecisions = 0
      let freshDecisions = 0
      let fallbacks = 0
      let panics = 0
      let retries = 0
      let retriesDenied = 0
      let loadReportsRejected = 0
      let local = 0
      let spilled = 0
      const timeBuckets = new Array<number>(ROUTING_TIME_BOUNDS_SECONDS.length + 1).fill(0)
      const responses = [0, 0, 0, 0, 0, 0]
      const failures: Record<FailureKind, number> = {
        upstream_error: 0,
        upstream_timeout: 0,
        no_replica: 0,
        client_abort: 0,
        request_too_large: 0,
        bad_request: 0,
        queue_full: 0,
        queue_timeout: 0,
        no_route: 0,
      }
      // One bucket per second of the trailing window, indexed by second modulo its length.
      const buckets = new Array<number>(RATE_WINDOW_SECONDS + 1).fill(0)
      const bucketSecond = new Array<number>(RATE_WINDOW_SECONDS + 1).fill(-1)

      const recordRequest = () => {
        total++
        const second = Math.floor(clock.unsafeCurrentTimeMillis() / 1000)
        const slot = second % buckets.length
        if (bucketSecond[slot] !== second) {
          bucketSecond[slot] = second
          buckets[slot] = 0
        }
        buckets[slot]!++
        return total
      }

      const requestsPerSecond = (now: number) => {
        const second = Math.floor(now / 1000)
        let count = 0
        for (let slot = 0; slot < buckets.length; slot++) {
          const age = second - bucketSecond[slot]!
          if (age >= 0 && age < RATE_WINDOW_SECONDS) count += buckets[slot]!
        }
        // The window covers the current (partial) second; early on it only covers the uptime.
        const windowSeconds = Math.min(
          RATE_WINDOW_SECONDS - 1 + (now % 1000) / 1000,
          (now - startedAt) / 1000,
        )
        return windowSeconds > 0 ? count / windowSeconds : 0
      }

      const service: RoutingStatsShape = {
        recordRequest,
        recordDecision: (decision, timeMs, panic) => {
          routed++
          routingTimeMs += timeMs
          const seconds = timeMs / 1000
          let bucket = 0
          while (
            bucket < ROUTING_TIME_BOUNDS_SECONDS.length &&
            seconds > ROUTING_TIME_BOUNDS_SECONDS[bucket]!
          )
            bucket++
          timeBuckets[bucket]!++
          decision.endpoint.picks++
          if (decision.freshMetrics !== undefined) {
            metricsDecisions++
            if (decision.freshMetrics) freshDecisions++
          }
          if (decision.fallback) fallbacks++
          if (panic) panics++
        },
        recordRetry: () => {
          retries++
        },
        recordRetryDenied: () => {
          retriesDenied++
        },
        recordResponse: (endpoint, status) => {
          const statusClass = Math.min(5, Math.floor(status / 100))
          responses[statusClass]!++
          endpoint.outcomes[Math.max(0, statusClass - 2)]!++
        },
        recordNoResponse: (endpoint, outcome) => {
          endpoint.outcomes[outcome === "error" ? ERROR : ABORTED]!++
        },
        recordFailure: (kind) => {
          failures[kind]++
        },
        recordRejectedLoadReport: () => {
          loadReportsRejected++
        },
        recordLocality: (outcome) => {
          if (outcome === "local") local++
          else if (outcome === "spilled") spilled++
        },
        metricsReads: () => ({ decisions: metricsDecisions, fresh: freshDecisions }),
        routingTimes: () => ({ bucketCounts: timeBuckets, sumSeconds: routingTimeMs / 1000, count: routed }),
        snapshot: () => {
          const now = clock.unsafeCurrentTimeMillis()
          return {
            total_requests: total,
            requests_per_second: Math.round(requestsPerSecond(now) * 100) / 100,
            routing_decisions: Object.fromEntries(
              pool
                .endpoints()
                .filter((endpoint) => endpoint.picks > 0)
                .map((endpoint) => [endpoint.id, endpoint.picks]),
            ),
            avg_routing_time_ms: routed === 0 ? 0 : routingTimeMs / routed,
            cache_hit_rate: metricsDecisions === 0 ? null : freshDecisions / metricsDecisions,
            fallback_decisions: fallbacks,
            panic_decisions: panics,
            retries,
            retries_denied: retriesDenied,
            responses: {
              "1xx": responses[1]!,
              "2xx": responses[2]!,
              "3xx": responses[3]!,
              "4xx": responses[4]!,
              "5xx": responses[5]!,
            },
            failures: { ...failures },
            load_reports_rejected: loadReportsRejected,
            locality: { local, spilled },
            uptime_seconds: (now - startedAt) / 1000,
          }
        },
      }
      return service
    }),
  )
}
