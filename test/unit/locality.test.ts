/**
 * Locality: the local replicas take requests while they hold at most LOCALITY_LOAD_FACTOR times their
 * share of what is in flight, and the rest spills; with no local candidate, or every candidate local,
 * nothing is narrowed.
 */
import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import type { Endpoint } from "../../src/Endpoint.ts"
import { makeLocality } from "../../src/locality.ts"
import { choiceOf, endpoints } from "./fakes.ts"

const onNode = (all: ReadonlyArray<Endpoint>, localCount: number) => {
  const local = new Set(all.slice(0, localCount))
  return { isLocal: (endpoint: Endpoint) => local.has(endpoint), version: () => 0 }
}

describe("locality", () => {
  it("stays local at low load, and spills once the local replica holds twice its share", () => {
    const all = endpoints(3)
    const locality = makeLocality(onNode(all, 1), 2)
    const choice = choiceOf(all)
    const first = locality.prefer(choice)
    expect(first.outcome).toBe("local")
    expect(first.choice.endpoints).toHaveLength(1)
    expect(first.choice.endpoints[0]).toBe(all[0])
    // With 2 on it and 1 elsewhere, its share of the 4 in flight with this one is 4/3, and twice that
    // rounds up to 3: a third is allowed. With 4 on it, twice its share of 6 is 4: a fifth is not.
    all[0]!.active = 2
    all[1]!.active = 1
    expect(locality.prefer(choice).outcome).toBe("local")
    all[0]!.active = 4
    const spilled = locality.prefer(choice)
    expect(spilled.outcome).toBe("spilled")
    expect(spilled.choice).toBe(choice)
  })

  it("narrows nothing when no candidate is local, or all are", () => {
    const all = endpoints(2)
    const choice = choiceOf(all)
    expect(makeLocality(onNode(all, 0), 2).prefer(choice)).toEqual({ choice, outcome: "none" })
    expect(makeLocality(onNode(all, 2), 2).prefer(choice)).toEqual({ choice, outcome: "local" })
  })

  it.prop(
    "a local choice never takes the local group past the factor times its share",
    [
      fc.array(fc.integer({ min: 0, max: 20 }), { minLength: 2, maxLength: 6 }),
      fc.integer({ min: 1, max: 3 }),
    ],
    ([actives, factor]) => {
      const all = endpoints(actives.length)
      actives.forEach((active, i) => {
        all[i]!.active = active
      })
      const { choice, outcome } = makeLocality(onNode(all, 1), factor).prefer(choiceOf(all))
      const total = actives.reduce((sum, n) => sum + n, 0) + 1
      if (outcome === "local") {
        expect(choice.endpoints).toHaveLength(1)
        expect(choice.endpoints[0]).toBe(all[0])
        expect(all[0]!.active + 1).toBeLessThanOrEqual(Math.ceil((factor * total) / actives.length))
      } else {
        expect(outcome).toBe("spilled")
        expect(choice.endpoints).toHaveLength(actives.length)
      }
    },
  )
})
