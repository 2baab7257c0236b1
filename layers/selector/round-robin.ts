/** Strict rotation over the candidates. */
import { Layer } from "effect"
import { ignoreExchanges, Selector, type SelectorShape } from "../../src/Selector.ts"
import { makeTurns } from "./rotation.ts"

export const layer = Layer.sync(Selector, (): SelectorShape => {
  const nextTurn = makeTurns()
  return {
    algorithm: "round-robin",
    pick: (candidates) => ({
      replica: candidates[nextTurn() % candidates.length]!,
      score: undefined,
      freshMetrics: undefined,
      fallback: false,
    }),
    observe: ignoreExchanges,
  }
})
