/** The balancer composed from the layers its configuration calls for. */
import { Effect, Layer } from "effect"
import { layer as adminLayer } from "../layers/admin/http.ts"
import { layer as memoryLeaseLayer } from "../layers/lease-store/memory.ts"
import { layer as proxyLayer } from "../layers/proxy/node-undici.ts"
import { layer as memoryRateLimitLayer } from "../layers/rate-limit-store/memory.ts"
import { layer as redisRateLimitLayer } from "../layers/rate-limit-store/redis.ts"
import { layer as environmentRoutesLayer } from "../layers/route-source/environment.ts"
import { layer as fileRoutesLayer } from "../layers/route-source/file.ts"
import { layer as labelRoutesLayer, type ServicesUnavailable } from "../layers/route-source/swarm-labels.ts"
import { layer as routeTableLayer } from "../layers/route-table/clusters.ts"
import { LbConfig } from "./Config.ts"
import type { RouteSource } from "./RouteSource.ts"
import type { RoutesFileInvalid } from "./routes/routes-file.ts"

/**
 * Swarm service labels (`ROUTES_FROM_LABELS`) or a routes file (`LB_ROUTES_FILE`) name the routes;
 * without either, the one route of `REPLICAS` or `TARGET_SERVICE`.
 */
const routeSourceLayer = Layer.unwrapEffect(
  Effect.map(
    LbConfig,
    (config): Layer.Layer<RouteSource, RoutesFileInvalid | ServicesUnavailable, LbConfig> =>
      config.routesFromLabels
        ? labelRoutesLayer
        : config.routesFile !== ""
          ? fileRoutesLayer
          : environmentRoutesLayer,
  ),
)

/** Rate-limit budgets shared through Redis when `RATE_LIMIT_REDIS_URL` is set, else in this process. */
const rateLimitStoreLayer = Layer.unwrapEffect(
  Effect.map(LbConfig, (config) =>
    config.rateLimitRedisUrl !== "" ? redisRateLimitLayer : memoryRateLimitLayer,
  ),
)

/**
 * The whole balancer, given its configuration, an HTTP client for the control plane and its Peers
 * (the other worker processes, for the views that answer for all of them): the routes
 * and their clusters (each route's discovery, pool, health, ejection, selector and router), the
 * leases and rate-limit budgets they all share, and on top the data plane and the admin views.
 */
export const BalancerLayer = proxyLayer.pipe(
  Layer.provideMerge(adminLayer),
  Layer.provideMerge(routeTableLayer),
  Layer.provideMerge(Layer.mergeAll(memoryLeaseLayer, rateLimitStoreLayer, routeSourceLayer)),
)
