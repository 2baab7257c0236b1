/** The Admin service over node:http: routes the balancer's own paths to their views. */
import type { IncomingMessage, ServerResponse } from "node:http"
import { Effect, Layer } from "effect"
import { Admin } from "../../src/Admin.ts"
import { LbConfig } from "../../src/Config.ts"
import { LeaseStore } from "../../src/LeaseStore.ts"
import { type Part, Peers } from "../../src/Peers.ts"
import { RateLimitStore } from "../../src/RateLimitStore.ts"
import { RouteTable } from "../../src/RouteTable.ts"
import { sendJson } from "../../src/send-json.ts"
import { combinedSnapshot } from "./combined-stats.ts"
import { dashboardPage } from "./dashboard.ts"
import { limitsOf, storeView } from "./limit-views.ts"
import { mergeExpositions } from "./merge-exposition.ts"
import {
  averageWeightsOf,
  type MetricsPart,
  mergeHealth,
  mergeMetrics,
  mergeReplicas,
} from "./merge-views.ts"
import { GAUGE_AGGREGATION, makePrometheus, PROMETHEUS_CONTENT_TYPE, PROMETHEUS_PATH } from "./prometheus.ts"
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

const send = (res: ServerResponse, answer: unknown): void => {
  if (answer instanceof Content) sendContent(res, 200, answer)
  else sendJson(res, 200, answer)
}

/** One exposition for the whole balancer; with one worker, its own as it stands. */
const expositionOf = (parts: ReadonlyArray<Part>): string =>
  parts.length === 1
    ? (parts[0]!.value as string)
    : mergeExpositions(
        parts.map(({ worker, value }) => ({ worker, text: value as string })),
        GAUGE_AGGREGATION,
      )

export const layer = Layer.effect(
  Admin,
  Effect.gen(function* () {
    const { config, leases, routes, rateLimits, peers } = yield* Effect.all({
      config: LbConfig,
      leases: LeaseStore,
      routes: RouteTable,
      rateLimits: RateLimitStore,
      peers: Peers,
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

    // This process's part of each view that answers for the whole balancer (every worker's, merged).
    peers.serve(
      "metrics",
      (): MetricsPart => ({
        metrics: metricsJson(),
        weights: averageWeightsOf(routes.clusters()),
      }),
    )
    peers.serve("replicas", () => replicasJson(read()))
    peers.serve("health", () => healthJson(algorithm, read(), rateLimits.status()))
    peers.serve("prometheus", prometheus)
    const gathered = <A>(view: string): Promise<ReadonlyArray<A>> =>
      peers.gather(view).then((parts) => {
        if (parts.length === 0) throw new Error(`no worker answered for ${view}`)
        return parts.map(({ value }) => value as A)
      })
    const replicas = () => gathered<ReturnType<typeof replicasJson>>("replicas").then(mergeReplicas)

    const views: Record<string, () => unknown> = {
      [config.metricsPath]: () => gathered<MetricsPart>("metrics").then(mergeMetrics),
      // One worker's health is the answer; several need the replicas every one of them finds healthy.
      "/_lb/health": () =>
        gathered<ReturnType<typeof healthJson>>("health").then(async (health) =>
          health.length === 1
            ? health[0]
            : mergeHealth(health, (await replicas()).filter(({ healthy }) => healthy).length),
        ),
      "/_lb/replicas": replicas,
      "/_lb/routes": () => routesJson(routes),
      "/_lb/dashboard": () => dashboard,
      [PROMETHEUS_PATH]: () =>
        peers
          .gather("prometheus")
          .then(
            (parts: ReadonlyArray<Part>) =>
              new Content(Buffer.from(expositionOf(parts)), { "content-type": PROMETHEUS_CONTENT_TYPE }),
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
      // Answers that take a moment: gathered from every worker, or collected asynchronously.
      if (answer instanceof Promise) {
        answer.then(
          (value: unknown) => send(res, value),
          (error: unknown) => sendJson(res, 500, { error: "internal", message: String(error) }),
        )
        return true
      }
      send(res, answer)
      return true
    }
    return { handle }
  }),
)
