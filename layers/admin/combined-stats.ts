/**
 * The PRD's `GET /metrics` for the whole balancer: every route's stats added up, with each route's
 * own figures beside them. Averages and rates are recombined from their counts, so one route gives
 * exactly its own snapshot.
 */

import type { Cluster } from "../../src/RouteTable.ts"
import type { FailureKind, StatsSnapshot } from "../../src/RoutingStats.ts"
import { type LimitsView, limitsOf } from "./limit-views.ts"

export interface RouteStats {
  readonly algorithm: string
  readonly total_requests: number
  readonly requests_per_second: number
  readonly routing_decisions: Record<string, number>
  readonly limits: LimitsView
}

export type CombinedSnapshot = StatsSnapshot & { readonly routes: Record<string, RouteStats> }

const addInto = (sum: Record<string, number>, part: Readonly<Record<string, number>>) => {
  for (const [key, value] of Object.entries(part)) sum[key] = (sum[key] ?? 0) + value
}

export const combinedSnapshot = (clusters: ReadonlyArray<Cluster>, noRoute: number): CombinedSnapshot => {
  let total = noRoute
  let rate = 0
  let routed = 0
  let routingSeconds = 0
  let metricsDecisions = 0
  let fresh = 0
  let fallback = 0
  let panic = 0
  let retries = 0
  let retriesDenied = 0
  let rejected = 0
  let uptime = 0
  let local = 0
  let spilled = 0
  const decisions: Record<string, number> = {}
  const responses: Record<string, number> = { "1xx": 0, "2xx": 0, "3xx": 0, "4xx": 0, "5xx": 0 }
  const failures: Record<string, number> = { no_route: noRoute }
  const routes: Record<string, RouteStats> = {}
  for (const cluster of clusters) {
    const { route, algorithm, stats } = cluster
    const snapshot = stats.snapshot()
    const times = stats.routingTimes()
    const reads = stats.metricsReads()
    total += snapshot.total_requests
    rate += snapshot.requests_per_second
    routed += times.count
    routingSeconds += times.sumSeconds
    metricsDecisions += reads.decisions
    fresh += reads.fresh
    fallback += snapshot.fallback_decisions
    panic += snapshot.panic_decisions
    retries += snapshot.retries
    retriesDenied += snapshot.retries_denied
    rejected += snapshot.load_reports_rejected
    local += snapshot.locality.local
    spilled += snapshot.locality.spilled
    uptime = Math.max(uptime, snapshot.uptime_seconds)
    addInto(decisions, snapshot.routing_decisions)
    addInto(responses, snapshot.responses)
    addInto(failures, snapshot.failures)
    routes[route.name] = {
      algorithm,
      total_requests: snapshot.total_requests,
      requests_per_second: snapshot.requests_per_second,
      routing_decisions: snapshot.routing_decisions,
      limits: limitsOf([cluster]),
    }
  }
  return {
    total_requests: total,
    requests_per_second: Math.round(rate * 100) / 100,
    routing_decisions: decisions,
    avg_routing_time_ms: routed === 0 ? 0 : (routingSeconds * 1000) / routed,
    cache_hit_rate: metricsDecisions === 0 ? null : fresh / metricsDecisions,
    fallback_decisions: fallback,
    panic_decisions: panic,
    retries,
    retries_denied: retriesDenied,
    responses,
    failures: failures as Record<FailureKind, number>,
    load_reports_rejected: rejected,
    locality: { local, spilled },
    uptime_seconds: uptime,
    routes,
  }
}
