/** Discovery from `REPLICAS`: a fixed list of origins, each replica keyed by its `host:port`. */
import { Effect, Layer } from "effect"
import { LbConfig } from "../../src/Config.ts"
import { Discovery } from "../../src/Discovery.ts"
import type { Replica } from "../../src/domain/Replica.ts"

export const replicaOf = (origin: string): Replica => ({
  id: new URL(origin).host,
  name: origin,
  origin,
  node: undefined,
})

export const layer = Layer.effect(
  Discovery,
  Effect.map(LbConfig, (config) => {
    const replicas = config.replicas.map(replicaOf)
    return { current: () => replicas, version: () => 0 }
  }),
)
