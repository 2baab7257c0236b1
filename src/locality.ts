/**
 * Locality (`LOCALITY=node|zone`), the PRD's "geographic routing" in a cluster's terms: requests go to
 * the replicas on the balancer's own node (or in its zone) while those are candidates and not hot,
 * and spill to the rest under load, as Envoy's zone-aware routing keeps traffic local until the local
 * hosts cannot take their share. "Hot" is the bounded load of affinity applied to the local group:
 * the local replicas take the request while, with it, they hold at most `factor` times their
 * weighted share of the route's requests in flight. So at low traffic everything stays local; a
 * local replica that slows down holds its requests longer, crosses the bound sooner, and the excess
 * goes elsewhere.
 */
import { Context, Schema } from "effect"
import type { Endpoint } from "./Endpoint.ts"
import type { Choice } from "./Selector.ts"

export const LocalityMode = Schema.Literal("off", "node", "zone")
export type LocalityMode = typeof LocalityMode.Type

/** Where a decision went, for the stats: to a local replica, spilled past the local ones, or neither. */
export type LocalityOutcome = "local" | "spilled" | "none"

export interface LocalityShape {
  /** The choice narrowed to the local endpoints while they may take the request, and what that was. */
  readonly prefer: (choice: Choice) => { readonly choice: Choice; readonly outcome: LocalityOutcome }
  readonly isLocal: (endpoint: Endpoint) => boolean
}

/** `LOCALITY=off`: every replica is as near as any other. */
export const everywhere: LocalityShape = {
  prefer: (choice) => ({ choice, outcome: "none" }),
  isLocal: () => false,
}

/** Which endpoints are local; `version` changes whenever that may answer differently. */
export interface LocalTest {
  readonly isLocal: (endpoint: Endpoint) => boolean
  readonly version: () => number
}

export const makeLocality = (test: LocalTest | undefined, factor: number): LocalityShape => {
  if (test === undefined) return everywhere
  const { isLocal } = test
  // The local subset of a candidates array, computed once per array: the pool keeps the array until
  // the candidates change, and selectors keep their rotation on the subset's identity.
  let subsets = new WeakMap<ReadonlyArray<Endpoint>, Choice | undefined>()
  let seenVersion = test.version()
  const localOf = (choice: Choice): Choice | undefined => {
    if (test.version() !== seenVersion) {
      seenVersion = test.version()
      subsets = new WeakMap()
    }
    if (subsets.has(choice.endpoints)) return subsets.get(choice.endpoints)
    const endpoints = choice.endpoints.filter(isLocal)
    const local =
      endpoints.length === 0 || endpoints.length === choice.endpoints.length
        ? undefined
        : { endpoints, uniform: endpoints.every((e) => e.effectiveWeight === endpoints[0]!.effectiveWeight) }
    subsets.set(choice.endpoints, local)
    return local
  }
  return {
    isLocal,
    prefer: (choice) => {
      const local = localOf(choice)
      if (local === undefined) {
        const allLocal = choice.endpoints.length > 0 && isLocal(choice.endpoints[0]!)
        return { choice, outcome: allLocal ? "local" : "none" }
      }
      let active = 0
      let weight = 0
      for (const endpoint of choice.endpoints) {
        active += endpoint.active
        weight += endpoint.effectiveWeight
      }
      let localActive = 0
      let localWeight = 0
      for (const endpoint of local.endpoints) {
        localActive += endpoint.active
        localWeight += endpoint.effectiveWeight
      }
      const share = ((active + 1) * localWeight) / weight
      // Rounded up, so with one request in flight the local group may always take it.
      const cold = localActive + 1 <= Math.ceil(factor * share)
      return cold ? { choice: local, outcome: "local" } : { choice, outcome: "spilled" }
    },
  }
}

/** A route's locality rule: the RouteTable provides one per route; without one, `everywhere`. */
export class Locality extends Context.Tag("swarmguard/Locality")<Locality, LocalityShape>() {}
