/** Strict rotation over the candidates, in proportion to their weights. */
import { Layer } from "effect"
import { ignoreExchanges, Selector, type SelectorShape } from "../../src/Selector.ts"
import { makeRotation } from "./rotation.ts"

export const layer = Layer.sync(Selector, (): SelectorShape => {
  const rotation = makeRotation()
  return {
    algorithm: "round-robin",
    pick: (choice) => ({
      endpoint: choice.endpoints[rotation(choice)]!,
      score: undefined,
      freshMetrics: undefined,
      fallback: false,
    }),
    observe: ignoreExchanges,
  }
})
