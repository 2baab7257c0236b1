/**
 * The RouteTable: one cluster per route, each built from the same layers in a scope of its own with
 * the route's settings as its configuration (algorithm, health path, service). A new version of the
 * routes is applied as linkerd applies a pool update: a route whose cluster is unchanged (same name,
 * upstream kind, algorithm, health path, affinity) keeps it with its state, and a static replica list
 * is handed to it as a discovery update; the others get new clusters. A cluster no route uses any more
 * stops taking requests at once and closes when its requests under way are done (or `DRAIN_TIMEOUT`).
 * The agents are polled once a route names a service, and once for all such routes.
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import {
  Context,
  Duration,
  Effect,
  Either,
  ExecutionStrategy,
  Exit,
  Layer,
  Schedule,
  Scope,
  Stream,
} from "effect"
import { Affinity } from "../../src/Affinity.ts"
import type { AgentReports } from "../../src/AgentReports.ts"
import { LbConfig, type LbConfigShape } from "../../src/Config.ts"
import { Discovery } from "../../src/Discovery.ts"
import type { LeaseStore } from "../../src/LeaseStore.ts"
import { makeRateLimiter } from "../../src/limits/rate-limiter.ts"
import { Locality, type LocalTest, makeLocality } from "../../src/locality.ts"
import { MetricsSource, type MetricsSourceShape } from "../../src/MetricsSource.ts"
import { OutlierDetector } from "../../src/OutlierDetector.ts"
import { RateLimitStore } from "../../src/RateLimitStore.ts"
import { ReplicaPool } from "../../src/ReplicaPool.ts"
import { Router } from "../../src/Router.ts"
import { type RouteSet, RouteSource } from "../../src/RouteSource.ts"
import { type Cluster, RouteTable } from "../../src/RouteTable.ts"
import { RoutingStats } from "../../src/RoutingStats.ts"
import { makeRouteMatcher, type RouteMatcher } from "../../src/routes/route-matcher.ts"
import type { RouteSpec } from "../../src/routes/route-spec.ts"
import { requestFacts } from "../../src/routes/rule-match.ts"
import { affinityLayer } from "../affinity/registry.ts"
import { layer as agentReportsLayer } from "../agent-reports/http.ts"
import { layer as agentDiscoveryLayer } from "../discovery/agents.ts"
import { makeStaticDiscovery, type StaticDiscovery } from "../discovery/static.ts"
import { layer as httpHealthLayer } from "../health-probe/http.ts"
import { layer as agentMetricsLayer } from "../metrics-source/agents.ts"
import { layer as noMetricsLayer } from "../metrics-source/none.ts"
import { layer as consecutiveOutliersLayer } from "../outlier-detector/consecutive.ts"
import { selectorLayers } from "../selector/registry.ts"
import { pollNodeZones } from "./node-zones.ts"
import { upstreamPathOf } from "./strip-prefix.ts"

const selectorLayer = Layer.unwrapEffect(Effect.map(LbConfig, (config) => selectorLayers[config.algorithm]))

/** One route's services, given its discovery and metrics: the rules on its pool, and its router. */
const clusterLayer = Router.layer.pipe(
  Layer.provideMerge(
    Layer.mergeAll(
      httpHealthLayer,
      consecutiveOutliersLayer,
      RoutingStats.layer,
      selectorLayer,
      affinityLayer,
    ),
  ),
  Layer.provideMerge(ReplicaPool.layer),
)

/** The agents, polled for every route that names a service. */
const agentsLayer = agentMetricsLayer.pipe(Layer.provideMerge(agentReportsLayer))

/** What stays of a cluster while its route changes only in rule, priority, prefix or replica list. */
interface Core {
  readonly key: string
  readonly scope: Scope.CloseableScope
  readonly services: Omit<Cluster, "route" | "upstreamPath">
  /** For a route that lists its replicas. */
  readonly replicas: StaticDiscovery | undefined
}

interface Entry extends Cluster {
  readonly core: Core
  readonly priority: number
  readonly matches: RouteSpec["matches"]
  readonly hosts: RouteSpec["hosts"]
  readonly catchAll: boolean
}

/** A route keeps its cluster while these are unchanged. */
const clusterKey = (route: RouteSpec): string =>
  JSON.stringify([
    route.name,
    route.upstream._tag === "Service" ? [route.upstream.service, route.upstream.port ?? null] : null,
    route.algorithm ?? null,
    route.healthPath ?? null,
    route.affinity ?? null,
    route.maxRequests ?? null,
    route.queueSize ?? null,
    route.queueTimeoutMs ?? null,
    route.rateLimit === undefined ? null : route.rateLimit,
  ])

/** The balancer's configuration as one route's services read it. */
const routeConfig = (config: LbConfigShape, route: RouteSpec): LbConfigShape => ({
  ...config,
  routeName: route.name,
  algorithm: route.algorithm ?? config.algorithm,
  healthCheckPath: route.healthPath ?? config.healthCheckPath,
  affinity: route.affinity ?? config.affinity,
  targetService: route.upstream._tag === "Service" ? route.upstream.service : route.name,
  targetPort: (route.upstream._tag === "Service" ? route.upstream.port : undefined) ?? config.targetPort,
  replicaMaxRequests: route.maxRequests ?? config.replicaMaxRequests,
  queueSize: route.queueSize ?? config.queueSize,
  queueTimeoutMs: route.queueTimeoutMs ?? config.queueTimeoutMs,
  rateLimit: route.rateLimit === null ? undefined : (route.rateLimit ?? config.rateLimit),
})

const POLL_DRAINED = Schedule.spaced(Duration.millis(100))

/** Which replicas are near this balancer: on its node, or on a node of its zone (node labels). */
const localTestOf = (config: LbConfigShape): Effect.Effect<LocalTest | undefined, never, Scope.Scope> => {
  if (config.locality === "off") return Effect.succeed(undefined)
  if (config.locality === "node") {
    return Effect.succeed({
      isLocal: (endpoint) => endpoint.replica.node === config.nodeName,
      version: () => 0,
    })
  }
  return Effect.map(pollNodeZones(config), (zones) => ({
    isLocal: (endpoint) => {
      const own = zones.zoneOf(config.nodeName)
      return own !== undefined && zones.zoneOf(endpoint.replica.node) === own
    },
    version: zones.version,
  }))
}

export const layer = Layer.scoped(
  RouteTable,
  Effect.gen(function* () {
    const config = yield* LbConfig
    const source = yield* RouteSource
    const shared = yield* Effect.context<LbConfig | LeaseStore | RateLimitStore | HttpClient.HttpClient>()
    const rateLimits = Context.get(shared, RateLimitStore)
    const tableScope = yield* Effect.scope
    const clock = yield* Effect.clock

    const localTest = yield* localTestOf(config)

    let agents: Context.Context<AgentReports | MetricsSource> | undefined
    const agentsContext = Effect.suspend(() =>
      agents !== undefined
        ? Effect.succeed(agents)
        : Layer.buildWithScope(agentsLayer, tableScope).pipe(
            Effect.tap((built) => {
              agents = built
            }),
          ),
    )

    const build = (route: RouteSpec, key: string) =>
      Effect.gen(function* () {
        const settings = routeConfig(config, route)
        const replicas =
          route.upstream._tag === "Replicas" ? makeStaticDiscovery(route.upstream.replicas) : undefined
        const sources =
          replicas !== undefined
            ? Layer.merge(Layer.succeed(Discovery, replicas), noMetricsLayer)
            : agentDiscoveryLayer.pipe(Layer.provideMerge(Layer.effectContext(agentsContext)))
        const scope = yield* Scope.fork(tableScope, ExecutionStrategy.sequential)
        const locality = makeLocality(localTest, config.localityLoadFactor)
        const built = yield* Layer.buildWithScope(
          clusterLayer.pipe(
            Layer.provide(Layer.merge(sources, Layer.succeed(Locality, locality))),
            Layer.provide(Layer.succeed(LbConfig, settings)),
          ),
          scope,
        )
        const core: Core = {
          key,
          scope,
          services: {
            algorithm: settings.algorithm,
            router: Context.get(built, Router),
            pool: Context.get(built, ReplicaPool),
            stats: Context.get(built, RoutingStats),
            outliers: Context.get(built, OutlierDetector),
            affinity: Context.get(built, Affinity),
            locality,
            rateLimiter:
              settings.rateLimit === undefined
                ? undefined
                : makeRateLimiter(route.name, settings.rateLimit, config.trustedProxies, rateLimits),
          },
          replicas,
        }
        return core
      })

    /** Requests under way on a cluster no route uses finish there; then it closes. */
    const retire = (core: Core) =>
      Effect.sync(() => core.services.pool.endpoints().every((endpoint) => endpoint.active === 0)).pipe(
        Effect.repeat({ schedule: POLL_DRAINED, until: (drained) => drained }),
        Effect.timeout(Duration.millis(config.drainTimeoutMs)),
        Effect.ignore,
        Effect.zipRight(Scope.close(core.scope, Exit.void)),
        Effect.zipRight(
          Effect.sync(() => {
            for (const endpoint of core.services.pool.endpoints()) {
              endpoint.retired = true
              void endpoint.upstream?.close()
            }
          }),
        ),
        Effect.forkIn(tableScope),
      )

    let entries: ReadonlyArray<Entry> = []
    let matcher: RouteMatcher<Entry> = makeRouteMatcher(entries)
    let loaded = { source: "", at: 0 }
    let applied = 0
    let refused = 0
    let lastError: string | undefined
    let noRoute = 0

    const apply = (set: RouteSet) =>
      Effect.gen(function* () {
        const previous = new Map(entries.map(({ core }) => [core.key, core]))
        const next: Array<Entry> = []
        for (const route of set.routes) {
          const key = clusterKey(route)
          let core = previous.get(key)
          previous.delete(key)
          if (core === undefined) core = yield* build(route, key)
          else if (route.upstream._tag === "Replicas") core.replicas?.set(route.upstream.replicas)
          next.push({
            ...core.services,
            core,
            route,
            priority: route.priority,
            matches: route.matches,
            hosts: route.hosts,
            catchAll: route.catchAll,
            upstreamPath: upstreamPathOf(route.stripPrefix),
          })
        }
        matcher = makeRouteMatcher(next)
        entries = matcher.ordered
        loaded = { source: set.source, at: clock.unsafeCurrentTimeMillis() }
        for (const core of previous.values()) yield* retire(core)
      }).pipe(Effect.provide(shared))

    yield* apply(source.initial)
    yield* source.changes.pipe(
      Stream.runForEach(
        Either.match({
          onLeft: ({ message }) =>
            Effect.sync(() => {
              refused++
              lastError = message
            }).pipe(
              Effect.zipRight(Effect.logError(`routes not reloaded, the last good ones stay: ${message}`)),
            ),
          onRight: (set) =>
            apply(set).pipe(
              Effect.tap(() => {
                applied++
              }),
              Effect.zipRight(
                Effect.logInfo("routes reloaded").pipe(
                  Effect.annotateLogs({
                    source: set.source,
                    routes: set.routes.map(({ name }) => name).join(","),
                  }),
                ),
              ),
            ),
        }),
      ),
      Effect.forkScoped,
    )

    return {
      // One catch-all route first (a balancer without routes): no request is read to know that.
      match: (req) => matcher.always ?? matcher.match(requestFacts(req.method, req.url, req.headers)),
      recordNoRoute: () => {
        noRoute++
      },
      noRouteCount: () => noRoute,
      clusters: () => entries,
      loaded: () => loaded,
      reloads: () => ({ applied, refused, lastError }),
      agentMetrics: (): MetricsSourceShape | undefined =>
        agents === undefined ? undefined : Context.get(agents, MetricsSource),
    }
  }),
)
