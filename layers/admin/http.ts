/** The Admin service over node:http: routes the balancer's own paths to their views. */
import type { IncomingMessage, ServerResponse } from "node:http"
import { Effect, Layer } from "effect"
import { Admin } from "../../src/Admin.ts"
import { LbConfig } from "../../src/Config.ts"
import { LeaseStore } from "../../src/LeaseStore.ts"
import { RateLimitStore } from "../../src/RateLimitStore.ts"
import { RouteTable } from "../../src/RouteTable.ts"
import { sendJson } from "../../src/send-json.ts"
import { combinedSnapshot } from "./combined-stats.ts"
import { dashboardPage } from "./dashboard.ts"
import { limitsOf, storeView } from "./limit-views.ts"
import { makePrometheus, PROMETHEUS_CONTENT_TYPE, PROMETHEUS_PATH } from "./prometheus.ts"
import { makeReadModel } from "./read-model.ts"
import { type BalancerMetrics, healthJson, replicasJson, routesJson } from "./views.ts"

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
    const { config, leases, routes, rateLimits } = yield* Effect.all({
      config: LbConfig,
      leases: LeaseStore,
      routes: RouteTable,
      rateLimits: RateLimitStore,
    })
    const { algorithm } = config
    const read = yield* makeReadModel
    const prometheus = yield* makePrometheus(read)

    const metricsJson = (): BalancerMetrics => {
      const clusters = routes.clusters()
      return {
        ...combinedSnapshot(clusters, routes.noRouteCount()),
        algorithm,
        leases: leases.totals(),
        ejections: clusters.reduce((sum, { outliers }) => sum + outliers.totalEjections(), 0),
        agent_poll_failures: routes.agentMetrics()?.pollFailures() ?? {},
        limits: { ...limitsOf(clusters), rate_limit_store: storeView(rateLimits.status()) },
      }
    }

    // Built here, once: serving the page is a buffer write.
    const { body, headers } = dashboardPage(config.metricsPath)
    const dashboard = new Content(body, headers)

    const views: Record<string, () => unknown> = {
      [config.metricsPath]: metricsJson,
      "/_lb/health": () => healthJson(algorithm, read(), rateLimits.status()),
      "/_lb/replicas": () => replicasJson(read()),
      "/_lb/routes": () => routesJson(routes),
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
