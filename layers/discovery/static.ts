/**
 * Discovery from a fixed list of origins (a route's `replicas`, or `REPLICAS`), each replica keyed by
 * its `host:port`. A reload of the routes may give the list anew: replicas that stay keep their
 * object, so the pool keeps their endpoints and state.
 */
import { Effect, Layer } from "effect"
import { LbConfig } from "../../src/Config.ts"
import { Discovery, type DiscoveryShape } from "../../src/Discovery.ts"
import type { Replica } from "../../src/domain/Replica.ts"
import type { WeightedOrigin } from "../../src/routes/route-spec.ts"

export const replicaOf = ({ origin, weight, maxRequests }: WeightedOrigin): Replica => ({
  id: new URL(origin).host,
  name: origin,
  origin,
  node: undefined,
  weight,
  maxRequests,
})

export interface StaticDiscovery extends DiscoveryShape {
  /** Replaces the list; a version change only when it differs. */
  readonly set: (origins: ReadonlyArray<WeightedOrigin>) => void
}

export const makeStaticDiscovery = (origins: ReadonlyArray<WeightedOrigin>): StaticDiscovery => {
  let replicas = origins.map(replicaOf)
  let version = 0
  return {
    current: () => replicas,
    version: () => version,
    set: (next) => {
      const known = new Map(replicas.map((replica) => [replica.origin, replica]))
      const updated = next.map((entry) => {
        const replica = known.get(entry.origin)
        return replica?.weight === entry.weight && replica.maxRequests === entry.maxRequests
          ? replica
          : replicaOf(entry)
      })
      const changed =
        updated.length !== replicas.length || updated.some((replica, i) => replica !== replicas[i])
      if (!changed) return
      replicas = updated
      version++
    },
  }
}

/** Discovery of `REPLICAS`, each of weight 1. */
export const layer = Layer.effect(
  Discovery,
  Effect.map(LbConfig, (config) =>
    makeStaticDiscovery(config.replicas.map((origin) => ({ origin, weight: 1 }))),
  ),
)
