/** The balancer's own endpoints: the PRD's `GET /metrics` JSON and the `/_lb/*` views. */
import type { IncomingMessage, ServerResponse } from "node:http"
import { Effect } from "effect"
import { LbConfig } from "../../src/Config.ts"
import { Discovery } from "../../src/Discovery.ts"
import type { Algorithm } from "../../src/domain/Algorithm.ts"
import { HealthProbe } from "../../src/HealthProbe.ts"
import { LeaseStore, type LeaseTotals } from "../../src/LeaseStore.ts"
import { MetricsSource } from "../../src/MetricsSource.ts"
import { OutlierDetector } from "../../src/OutlierDetector.ts"
import { RoutingStats, type StatsSnapshot } from "../../src/RoutingStats.ts"
import { Selector } from "../../src/Selector.ts"
import { loadScore } from "../../src/score.ts"
import { dashboardPage } from "./dashboard.ts"
import { makePrometheus, PROMETHEUS_CONTENT_TYPE, PROMETHEUS_PATH } from "./prometheus.ts"

/** The body of `GET /metrics` (LB_METRICS_PATH): the PRD's fields and the balancer's additions. */
export type BalancerMetrics = StatsSnapshot & {
  readonly algorithm: Algorithm
  readonly leases: LeaseTotals
  /** Passive ejections since start. */
  readonly ejections: number
  /** Failed agent polls per agent since start. */
  readonly agent_poll_failures: Readonly<Record<string, number>>
}

export const sendJson = (res: ServerResponse, status: number, body: unknown): void => {
  const payload = JSON.stringify(body)
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(payload),
    "cache-control": "no-store",
  })
  res.end(payload)
}

/** A route's answer in a content type of its own; whatever else a route returns is sent as JSON. */
export class Content {
  constructor(
    readonly body: Buffer,
    /** Must name the content type. */
    readonly headers: Readonly<Record<string, string>>,
  ) {}
}

const sendContent = (res: ServerResponse, status: number, content: Content): void => {
  res.writeHead(status, {
    "cache-control": "no-store",
    ...content.headers,
    "content-length": content.body.length,
  })
  res.end(content.body)
}

/** Builds the handler of the balancer's own paths; it returns false for paths that are proxied. */
export const makeAdmin = Effect.gen(function* () {
  const config = yield* LbConfig
  const discovery = yield* Discovery
  const health = yield* HealthProbe
  const leases = yield* LeaseStore
  const metrics = yield* MetricsSource
  const outliers = yield* OutlierDetector
  const stats = yield* RoutingStats
  const { algorithm } = yield* Selector
  const prometheus = yield* makePrometheus
  const clock = yield* Effect.clock

  const metricsJson = (): BalancerMetrics => ({
    ...stats.snapshot(),
    algorithm,
    leases: leases.totals(),
    ejections: outliers.totalEjections(),
    agent_poll_failures: metrics.pollFailures(),
  })

  const replicasJson = () => {
    const now = clock.unsafeCurrentTimeMillis()
    return discovery.current().map((replica) => {
      const state = health.state(replica.id)
      const sample = metrics.get(replica.id)
      return {
        id: replica.id,
        name: replica.name,
        origin: replica.origin,
        node: replica.node ?? null,
        healthy: health.isHealthy(replica.id),
        consecutive_failures: state?.consecutiveFailures ?? 0,
        last_error: state?.lastError ?? null,
        ejected: outliers.isEjected(replica.id),
        ejections: outliers.state(replica.id)?.ejections ?? 0,
        active_leases: leases.active(replica.id),
        picks: stats.decisionsFor(replica.id),
        metrics:
          sample === undefined
            ? null
            : {
                cpu_percent: sample.cpuPercent,
                memory_percent: sample.memoryPercent,
                network_mbps: sample.networkMbps,
                age_ms: now - sample.sampledAt,
                fresh: now - sample.sampledAt <= config.metricsMaxAgeMs,
              },
        score: sample === undefined ? null : loadScore(sample, config),
      }
    })
  }

  const healthJson = () => {
    const known = discovery.current()
    const healthy = known.filter((replica) => health.isHealthy(replica.id)).length
    return { status: "ok", algorithm, replicas_known: known.length, replicas_healthy: healthy }
  }

  // Built here, once: serving the page is a buffer write.
  const { body, headers } = dashboardPage(config.metricsPath)
  const dashboard = new Content(body, headers)

  const routes: Record<string, () => unknown> = {
    [config.metricsPath]: metricsJson,
    "/_lb/health": healthJson,
    "/_lb/replicas": replicasJson,
    "/_lb/dashboard": () => dashboard,
    [PROMETHEUS_PATH]: () =>
      prometheus().then(
        (text) => new Content(Buffer.from(text), { "content-type": PROMETHEUS_CONTENT_TYPE }),
      ),
  }

  return (req: IncomingMessage, res: ServerResponse, path: string): boolean => {
    const route = routes[path]
    if (route === undefined) {
      if (!path.startsWith("/_lb/")) return false
      sendJson(res, 404, { error: "not_found", message: `no balancer endpoint at ${path}` })
      return true
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.setHeader("allow", "GET, HEAD")
      sendJson(res, 405, { error: "method_not_allowed", message: `${path} answers GET only` })
      return true
    }
    const answer = route()
    // Answers that take a moment (the Prometheus exposition is collected asynchronously).
    if (answer instanceof Promise) {
      answer.then(
        (content: Content) => sendContent(res, 200, content),
        (error: unknown) => sendJson(res, 500, { error: "internal", message: String(error) }),
      )
      return true
    }
    if (answer instanceof Content) sendContent(res, 200, answer)
    else sendJson(res, 200, answer)
    return true
  }
})
