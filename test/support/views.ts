/** Typed reads of the balancer's own endpoints, and of which replica answered a run of requests. */
import type { BalancerMetrics } from "../../layers/admin/views.ts"
import { getJson, request } from "./http.ts"
import { waitFor } from "./wait.ts"

/** One row of `GET /_lb/replicas`. */
export interface ReplicaRow {
  readonly route: string
  /** On the balancer's node or in its zone (`LOCALITY`). */
  readonly local: boolean
  readonly id: string
  readonly name: string
  readonly origin: string
  readonly healthy: boolean
  readonly consecutive_failures: number
  readonly last_error: string | null
  /** Out of rotation after failing requests in a row (passive ejection). */
  readonly ejected: boolean
  readonly ejections: number
  readonly active_leases: number
  readonly picks: number
  /** The replica's last metrics sample; null without agents. */
  readonly metrics: { readonly age_ms: number; readonly fresh: boolean } | null
  readonly score: number | null
  /** The load the replica last reported itself (`endpoint-load-metrics`); null while it sent none. */
  readonly load_report: {
    readonly cpu_utilization: number | null
    readonly mem_utilization: number | null
    readonly application_utilization: number | null
    readonly rps: number | null
    readonly named_metrics: Readonly<Record<string, number>>
    readonly age_ms: number
  } | null
}

/** `GET /metrics`: the PRD's fields and the balancer's additions. */
export type MetricsJson = BalancerMetrics

export const replicasView = (lb: string) => getJson<ReadonlyArray<ReplicaRow>>(`${lb}/_lb/replicas`)

export const metricsView = (lb: string) => getJson<MetricsJson>(`${lb}/metrics`)

/**
 * Sends `count` GETs to `path` one after another and counts the `x-replica` of each answer; any
 * answer but 200 fails, so callers also learn that no client saw an error.
 */
export const sharesOf = async (
  lb: string,
  count: number,
  path = "/whoami",
): Promise<Record<string, number>> => {
  const shares: Record<string, number> = {}
  for (let i = 0; i < count; i++) {
    const reply = await request(`${lb}${path}`)
    if (reply.status !== 200) {
      throw new Error(
        `request ${i + 1} of ${count} to ${path} answered ${reply.status}: ${reply.body.toString("utf8")}`,
      )
    }
    const replica = String(reply.headers["x-replica"])
    shares[replica] = (shares[replica] ?? 0) + 1
  }
  return shares
}

/** Waits until the balancer holds no lease at all, by both of its views. */
export const waitForNoLeases = (lb: string, timeoutMs = 10_000) =>
  waitFor(
    "every lease to be released",
    async () => {
      const [rows, metrics] = await Promise.all([replicasView(lb), metricsView(lb)])
      return rows.every((row) => row.active_leases === 0) && metrics.leases.active === 0
        ? { rows, metrics }
        : undefined
    },
    { timeoutMs },
  )

/** Waits until `/_lb/replicas` shows the replica with `id` as healthy (or not). */
export const waitForHealth = (lb: string, id: string, healthy: boolean, timeoutMs = 10_000) =>
  waitFor(
    `replica ${id} to be reported ${healthy ? "healthy" : "unhealthy"} by /_lb/replicas`,
    async () => {
      const row = (await replicasView(lb)).find((candidate) => candidate.id === id)
      if (row === undefined) throw new Error(`/_lb/replicas does not list ${id}`)
      return row.healthy === healthy ? row : undefined
    },
    { timeoutMs },
  )
