/**
 * The route of a balancer configured without a routes file, as it always was: every request goes to
 * `REPLICAS` when they are given, else to the tasks of `TARGET_SERVICE`. It never changes.
 */
import { Effect, Layer, Stream } from "effect"
import { DEFAULT_ROUTE, LbConfig } from "../../src/Config.ts"
import { RouteSource } from "../../src/RouteSource.ts"
import type { RouteSpec } from "../../src/routes/route-spec.ts"

export const layer = Layer.effect(
  RouteSource,
  Effect.map(LbConfig, (config) => {
    const route: RouteSpec = {
      name: DEFAULT_ROUTE,
      rule: "PathPrefix(`/`)",
      matches: () => true,
      hosts: undefined,
      catchAll: true,
      priority: 0,
      stripPrefix: undefined,
      upstream:
        config.replicas.length > 0
          ? { _tag: "Replicas", replicas: config.replicas.map((origin) => ({ origin, weight: 1 })) }
          : { _tag: "Service", service: config.targetService, port: undefined },
      weight: 1,
      algorithm: undefined,
      affinity: undefined,
      healthPath: undefined,
      maxRequests: undefined,
      queueSize: undefined,
      queueTimeoutMs: undefined,
      rateLimit: undefined,
    }
    return { initial: { routes: [route], source: "environment" }, changes: Stream.empty }
  }),
)
