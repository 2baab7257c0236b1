/** Active leases × `LEASE_COUNT_WEIGHT` plus the load score; fewest leases where metrics are stale. */
import { Effect, Layer } from "effect"
import { LbConfig } from "../../src/Config.ts"
import { LeaseStore } from "../../src/LeaseStore.ts"
import { Selector } from "../../src/Selector.ts"
import { argminFrom } from "./rotation.ts"
import { makeScoredSelector } from "./scored.ts"

export const layer = Layer.effect(
  Selector,
  Effect.gen(function* () {
    const { leaseCountWeight } = yield* LbConfig
    const leases = yield* LeaseStore
    return yield* makeScoredSelector({
      algorithm: "hybrid",
      extraScore: (replica) => leases.active(replica.id) * leaseCountWeight,
      fallback: (candidates, turn) =>
        candidates[argminFrom(candidates.length, turn, (i) => leases.active(candidates[i]!.id))]!,
    })
  }),
)
