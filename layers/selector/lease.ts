/**
 * Fewest active leases (in-flight requests) per unit of weight, as HAProxy's `leastconn` weighs
 * connections by server weight; ties take turns.
 */
import { Layer } from "effect"
import type { Endpoint } from "../../src/Endpoint.ts"
import { ignoreExchanges, Selector, type SelectorShape } from "../../src/Selector.ts"
import { argminFrom, makeRotation } from "./rotation.ts"

/** In-flight requests per unit of weight; with equal weights the count itself orders the same. */
export const weightedActive = (endpoint: Endpoint, uniform: boolean): number =>
  uniform ? endpoint.active : endpoint.active / endpoint.effectiveWeight

export const layer = Layer.sync(Selector, (): SelectorShape => {
  const rotation = makeRotation()
  return {
    algorithm: "lease",
    pick: (choice) => {
      const { endpoints, uniform } = choice
      const index = argminFrom(endpoints.length, rotation(choice), (i) =>
        weightedActive(endpoints[i]!, uniform),
      )
      const endpoint = endpoints[index]!
      return { endpoint, score: endpoint.active, freshMetrics: undefined, fallback: false }
    },
    observe: ignoreExchanges,
  }
})
