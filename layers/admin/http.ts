/** The Admin service over node:http: routes the balancer's own paths to their views. */
import type { IncomingMessage, ServerResponse } from "node:http"
import { Effect, Layer } from "effect"
import { Admin } from "../../src/Admin.ts"
import { LbConfig } from "../../src/Config.ts"
import { LeaseStore } from "../../src/LeaseStore.ts"
import { MetricsSource } from "../../src/MetricsSource.ts"
import { OutlierDetector } from "../../src/OutlierDetector.ts"
import { RoutingStats } from "../../src/RoutingStats.ts"
import { Selector } from "../../src/Selector.ts"
import { sendJson } from "../../src/send-json.ts"
import { dashboardPage } from "./dashboard.ts"
import { makePrometheus, PROMETHEUS_CONTENT_TYPE, PROMETHEUS_PATH } from "./prometheus.ts"
import { makeReadModel } from "./read-model.ts"
import { type BalancerMetrics, healthJson, replicasJson } from "./views.ts"

/** A view's answer in a content type of its own; whatever else a view returns is sent as JSON. */
class Content {
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

export const layer = Layer.effect(
  Admin,
  Effect.gen(function* () {
    const { config, leases, metrics, outliers, stats, selector } = yield* Effect.all({
      config: LbConfig,
      leases: LeaseStore,
      metrics: MetricsSource,
      outliers: OutlierDetector,
      stats: RoutingStats,
      selector: Selector,
    })
    const { algorithm } = selector
    const read = yield* makeReadModel
    const prometheus = yield* makePrometheus(read)

    const metricsJson = (): BalancerMetrics => ({
      ...stats.snapshot(),
      algorithm,
      leases: leases.totals(),
      ejections: outliers.totalEjections(),
      agent_poll_failures: metrics.pollFailures(),
    })

    // Built here, once: serving the page is a buffer write.
    const { body, headers } = dashboardPage(config.metricsPath)
    const dashboard = new Content(body, headers)

    const views: Record<string, () => unknown> = {
      [config.metricsPath]: metricsJson,
      "/_lb/health": () => healthJson(algorithm, read()),
      "/_lb/replicas": () => replicasJson(read()),
      "/_lb/dashboard": () => dashboard,
      [PROMETHEUS_PATH]: () =>
        prometheus().then(
          (text) => new Content(Buffer.from(text), { "content-type": PROMETHEUS_CONTENT_TYPE }),
        ),
    }

    const handle = (req: IncomingMessage, res: ServerResponse, path: string): boolean => {
      const view = views[path]
      if (view === undefined) {
        if (!path.startsWith("/_lb/")) return false
        sendJson(res, 404, { error: "not_found", message: `no balancer endpoint at ${path}` })
        return true
      }
      if (req.method !== "GET" && req.method !== "HEAD") {
        res.setHeader("allow", "GET, HEAD")
        sendJson(res, 405, { error: "method_not_allowed", message: `${path} answers GET only` })
        return true
      }
      const answer = view()
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
    return { handle }
  }),
)
