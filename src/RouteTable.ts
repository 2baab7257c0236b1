/**
 * The routes in force, each with its cluster: the services that balance that route's replicas
 * (discovery, pool, health, ejection, selector, stats, router), one set per route as Envoy builds one
 * cluster per upstream, so every algorithm keeps its state per route. The data plane asks it which
 * cluster a request goes to; the admin views read every cluster.
 */
import type { IncomingMessage } from "node:http"
import { Context } from "effect"
import type { AffinityShape } from "./Affinity.ts"
import type { Algorithm } from "./domain/Algorithm.ts"
import type { RateLimiter } from "./limits/rate-limiter.ts"
import type { LocalityShape } from "./locality.ts"
import type { MetricsSourceShape } from "./MetricsSource.ts"
import type { OutlierDetectorShape } from "./OutlierDetector.ts"
import type { ReplicaPoolShape } from "./ReplicaPool.ts"
import type { RouterShape } from "./Router.ts"
import type { RoutingStatsShape } from "./RoutingStats.ts"
import type { RouteSpec } from "./routes/route-spec.ts"

/** One route's balancing services. */
export interface Cluster {
  readonly route: RouteSpec
  readonly algorithm: Algorithm
  readonly router: RouterShape
  readonly pool: ReplicaPoolShape
  readonly stats: RoutingStatsShape
  readonly outliers: OutlierDetectorShape
  readonly affinity: AffinityShape
  readonly locality: LocalityShape
  /** The route's client rate limit; undefined: none. */
  readonly rateLimiter: RateLimiter | undefined
  /** The path the replica is sent: the request's, less the route's `strip-prefix`. */
  readonly upstreamPath: (url: string) => string
}

export interface RouteReloads {
  readonly applied: number
  readonly refused: number
  /** Why the latest refused version was refused; undefined while none was. */
  readonly lastError: string | undefined
}

export interface RouteTableShape {
  /** The cluster of the first route, by priority, whose rule the request matches. */
  readonly match: (req: IncomingMessage) => Cluster | undefined
  /** A request matched no route; it was answered 404. */
  readonly recordNoRoute: () => void
  readonly noRouteCount: () => number
  /** The clusters of the routes in force, in the order routes are tried. */
  readonly clusters: () => ReadonlyArray<Cluster>
  /** Where the routes in force came from and when they were loaded (epoch ms). */
  readonly loaded: () => { readonly source: string; readonly at: number }
  readonly reloads: () => RouteReloads
  /** The agents' resource samples, once a route needed the agents; undefined before. */
  readonly agentMetrics: () => MetricsSourceShape | undefined
}

export class RouteTable extends Context.Tag("swarmguard/RouteTable")<RouteTable, RouteTableShape>() {}
