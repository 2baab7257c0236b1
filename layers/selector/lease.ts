/** Fewest active leases (in-flight requests); ties take turns. */
import { Effect, Layer } from "effect"
import { LeaseStore } from "../../src/LeaseStore.ts"
import { ignoreExchanges, Selector } from "../../src/Selector.ts"
import { argminFrom, makeTurns } from "./rotation.ts"

export const layer = Layer.effect(
  Selector,
  Effect.gen(function* () {
    const leases = yield* LeaseStore
    const nextTurn = makeTurns()
    return {
      algorithm: "lease",
      pick: (candidates) => {
        const index = argminFrom(candidates.length, nextTurn(), (i) => leases.active(candidates[i]!.id))
        const replica = candidates[index]!
        return { replica, score: leases.active(replica.id), freshMetrics: undefined, fallback: false }
      },
      observe: ignoreExchanges,
    }
  }),
)
