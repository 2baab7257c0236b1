/** Active leases × `LEASE_COUNT_WEIGHT` plus the load score; fewest leases where metrics are stale. */
import { Effect, Layer } from "effect"
import { LbConfig } from "../../src/Config.ts"
import { Selector } from "../../src/Selector.ts"
import { leastLoadedFrom } from "./rotation.ts"
import { makeScoredSelector } from "./scored.ts"

export const layer = Layer.effect(
  Selector,
  Effect.gen(function* () {
    const { leaseCountWeight } = yield* LbConfig
    return yield* makeScoredSelector({
      algorithm: "hybrid",
      extraScore: (endpoint) => endpoint.active * leaseCountWeight,
      fallback: leastLoadedFrom,
    })
  }),
)
