/** The JSON views: the PRD's `GET /metrics` (LB_METRICS_PATH), `/_lb/health` and `/_lb/replicas`. */
import type { Algorithm } from "../../src/domain/Algorithm.ts"
import type { LeaseTotals } from "../../src/LeaseStore.ts"
import type { RateLimitStoreStatus } from "../../src/RateLimitStore.ts"
import type { RouteTableShape } from "../../src/RouteTable.ts"
import type { Affinity } from "../../src/routes/route-spec.ts"
import type { CombinedSnapshot } from "./combined-stats.ts"
import type { LimitsView, storeView } from "./limit-views.ts"
import type { EndpointView } from "./read-model.ts"

/** The body of `GET /metrics`: the PRD's fields and the balancer's additions. */
export type BalancerMetrics = CombinedSnapshot & {
  readonly algorithm: Algorithm
  readonly leases: LeaseTotals
  /** Passive ejections since start. */
  readonly ejections: number
  /** Failed agent polls per agent since start. */
  readonly agent_poll_failures: Readonly<Record<string, number>>
  /** Every route's queue and rate limit added up, and the rate-limit store's state. */
  readonly limits: LimitsView & { readonly rate_limit_store: ReturnType<typeof storeView> }
}

export const replicasJson = (views: ReadonlyArray<EndpointView>) =>
  views.map(({ route, local, endpoint, sample, loadReportAgeMs }) => ({
    route,
    local,
    id: endpoint.id,
    name: endpoint.replica.name,
    origin: endpoint.replica.origin,
    node: endpoint.replica.node ?? null,
    weight: endpoint.weight,
    healthy: endpoint.health.healthy,
    consecutive_failures: endpoint.health.consecutiveFailures,
    last_error: endpoint.health.lastError ?? null,
    ejected: endpoint.ejected,
    ejections: endpoint.ejection.ejections,
    active_leases: endpoint.active,
    picks: endpoint.picks,
    metrics:
      sample === undefined
        ? null
        : {
            cpu_percent: sample.cpuPercent,
            memory_percent: sample.memoryPercent,
            network_mbps: sample.networkMbps,
            age_ms: sample.ageMs,
            fresh: sample.fresh,
          },
    score: sample?.score ?? null,
    load_report:
      endpoint.loadReport === undefined
        ? null
        : {
            cpu_utilization: endpoint.loadReport.report.cpuUtilization ?? null,
            mem_utilization: endpoint.loadReport.report.memUtilization ?? null,
            application_utilization: endpoint.loadReport.report.applicationUtilization ?? null,
            rps: endpoint.loadReport.report.rps ?? null,
            named_metrics: endpoint.loadReport.report.named,
            age_ms: loadReportAgeMs,
          },
  }))

/**
 * `/_lb/health`: `degraded` while the shared rate limits cannot be shared (Redis unreachable); the
 * balancer still serves, so the status code stays 200 and an orchestrator does not restart it.
 */
export const healthJson = (
  algorithm: Algorithm,
  views: ReadonlyArray<EndpointView>,
  rateLimits: RateLimitStoreStatus,
) => ({
  status: rateLimits.degraded ? "degraded" : "ok",
  algorithm,
  replicas_known: views.length,
  replicas_healthy: views.filter(({ endpoint }) => endpoint.health.healthy).length,
  ...(rateLimits.degraded ? { degraded: ["rate_limit_redis_unreachable"] } : {}),
})

const affinityText = (affinity: Affinity | undefined): string | null =>
  affinity === undefined
    ? null
    : affinity._tag === "Cookie"
      ? "cookie"
      : affinity.key === "ip"
        ? "hash:ip"
        : `hash:${affinity.header}`

/** `/_lb/routes`: the routes in force, in the order they are tried, where they came from and when. */
export const routesJson = (routes: RouteTableShape) => {
  const { source, at } = routes.loaded()
  const { applied, refused, lastError } = routes.reloads()
  return {
    source,
    loaded_at: new Date(at).toISOString(),
    reloads: { applied, refused, last_error: lastError ?? null },
    routes: routes.clusters().map(({ route, algorithm, pool }) => {
      const endpoints = pool.endpoints()
      return {
        name: route.name,
        rule: route.rule,
        priority: route.priority,
        strip_prefix: route.stripPrefix ?? null,
        algorithm,
        affinity: affinityText(route.affinity),
        health_path: route.healthPath ?? null,
        ...(route.upstream._tag === "Service"
          ? { service: route.upstream.service }
          : { replicas: route.upstream.replicas.map(({ origin, weight }) => ({ url: origin, weight })) }),
        replicas_known: endpoints.length,
        replicas_healthy: endpoints.filter(({ health }) => health.healthy).length,
      }
    }),
  }
}
