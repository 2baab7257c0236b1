/**
 * One read of every endpoint's state, with the figures derived from it (metrics age and freshness,
 * load score, the age of its own load report), for the JSON views and the Prometheus exposition alike.
 */
import { Effect } from "effect"
import { LbConfig } from "../../src/Config.ts"
import type { Algorithm } from "../../src/domain/Algorithm.ts"
import type { Endpoint } from "../../src/Endpoint.ts"
import { RouteTable } from "../../src/RouteTable.ts"
import { loadScore } from "../../src/score.ts"

export interface SampleView {
  readonly cpuPercent: number
  readonly memoryPercent: number
  readonly networkMbps: number
  readonly ageMs: number
  /** Young enough for the metric-reading algorithms (`METRICS_MAX_AGE`). */
  readonly fresh: boolean
  /** The PRD's weighted load score of the sample. */
  readonly score: number
}

export interface EndpointView {
  /** The route whose cluster it is in: a replica in two routes has an endpoint in each. */
  readonly route: string
  readonly algorithm: Algorithm
  /** On this balancer's node, or in its zone (`LOCALITY`). */
  readonly local: boolean
  readonly endpoint: Endpoint
  /** Undefined while its agent reported no sample. */
  readonly sample: SampleView | undefined
  /** How old the replica's own latest load report is; undefined while it sent none. */
  readonly loadReportAgeMs: number | undefined
}

/** Returns the reader: every known endpoint of every route, now. */
export const makeReadModel = Effect.gen(function* () {
  const config = yield* LbConfig
  const routes = yield* RouteTable
  const clock = yield* Effect.clock

  const sampleOf = (endpoint: Endpoint, now: number): SampleView | undefined => {
    const { metrics } = endpoint
    if (metrics === undefined) return undefined
    const ageMs = now - metrics.sampledAt
    return {
      cpuPercent: metrics.cpuPercent,
      memoryPercent: metrics.memoryPercent,
      networkMbps: metrics.networkMbps,
      ageMs,
      fresh: ageMs <= config.metricsMaxAgeMs,
      score: loadScore(metrics, config),
    }
  }

  return (): ReadonlyArray<EndpointView> => {
    const now = clock.unsafeCurrentTimeMillis()
    return routes.clusters().flatMap(({ route, algorithm, pool, locality }) =>
      pool.endpoints().map((endpoint) => ({
        route: route.name,
        algorithm,
        local: locality.isLocal(endpoint),
        endpoint,
        sample: sampleOf(endpoint, now),
        loadReportAgeMs: endpoint.loadReport === undefined ? undefined : now - endpoint.loadReport.receivedAt,
      })),
    )
  }
})
