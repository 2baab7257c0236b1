/** The JSON views: the PRD's `GET /metrics` (LB_METRICS_PATH), `/_lb/health` and `/_lb/replicas`. */
import type { Algorithm } from "../../src/domain/Algorithm.ts"
import type { LeaseTotals } from "../../src/LeaseStore.ts"
import type { StatsSnapshot } from "../../src/RoutingStats.ts"
import type { EndpointView } from "./read-model.ts"

/** The body of `GET /metrics`: the PRD's fields and the balancer's additions. */
export type BalancerMetrics = StatsSnapshot & {
  readonly algorithm: Algorithm
  readonly leases: LeaseTotals
  /** Passive ejections since start. */
  readonly ejections: number
  /** Failed agent polls per agent since start. */
  readonly agent_poll_failures: Readonly<Record<string, number>>
}

export const replicasJson = (views: ReadonlyArray<EndpointView>) =>
  views.map(({ endpoint, sample, loadReportAgeMs }) => ({
    id: endpoint.id,
    name: endpoint.replica.name,
    origin: endpoint.replica.origin,
    node: endpoint.replica.node ?? null,
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

export const healthJson = (algorithm: Algorithm, views: ReadonlyArray<EndpointView>) => ({
  status: "ok",
  algorithm,
  replicas_known: views.length,
  replicas_healthy: views.filter(({ endpoint }) => endpoint.health.healthy).length,
})
