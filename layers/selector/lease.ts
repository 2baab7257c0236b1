/**
 * Fewest active leases (in-flight requests) per unit of weight, as HAProxy's `leastconn` weighs
 * connections by server weight; ties take turns. With uneven weights, loads within a request or so of
 * each other count as ties too (`isLevel`), so shares follow the weights however few requests are in
 * flight.
 */
import { Layer } from "effect"
import { ignoreExchanges, Selector, type SelectorShape } from "../../src/Selector.ts"
import { leastLoadedFrom, makeRotation } from "./rotation.ts"

export const layer = Layer.sync(Selector, (): SelectorShape => {
  const rotation = makeRotation()
  return {
    algorithm: "lease",
    pick: (choice) => {
      const endpoint = choice.endpoints[leastLoadedFrom(choice, rotation(choice))]!
      return { endpoint, score: endpoint.active, freshMetrics: undefined, fallback: false }
    },
    observe: ignoreExchanges,
  }
})
