/**
 * What each request of a run asks for: `GET /compute/cpu?ms=<cost>`, a fixed service cost, so the
 * arrival rate follows from the allowances alone and is the same on every run and every machine.
 * Where a scenario mixes costs, request `i` of a run draws its cost from a seeded hash of `i`, so every
 * contender gets the same sequence of costs.
 */
import type { CostClass, ScenarioSpec } from "./scenarios.ts"

/** CPU milliseconds a one-unit request costs a replica: 100 req/s for a half-core replica. */
export const UNIT_COST_MS = 5

export const computePath = (units: number) => `/compute/cpu?ms=${units * UNIT_COST_MS}`

/** Any fixed seed would do; fixed, so two runs send the same costs in the same order. */
const SEED = 0x5eed_2026

/** A number in [0, 1) from `index`: splitmix32's finaliser, stateless so any request can be asked for. */
export const uniformAt = (seed: number, index: number): number => {
  let z = (seed + Math.imul(index, 0x9e3779b9)) | 0
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b)
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35)
  return ((z ^ (z >>> 16)) >>> 0) / 4294967296
}

const pick = (costs: ReadonlyArray<CostClass>, draw: number): number => {
  const total = costs.reduce((sum, cost) => sum + cost.weight, 0)
  let left = draw * total
  for (const cost of costs) {
    left -= cost.weight
    if (left < 0) return cost.units
  }
  return costs[costs.length - 1]!.units
}

/** Request index → path, for one scenario. */
export const requestPaths = (scenario: ScenarioSpec): ((index: number) => string) => {
  const costs = scenario.costs
  if (costs === undefined || costs.length === 0) {
    const path = computePath(1)
    return () => path
  }
  const paths = new Map(costs.map((cost) => [cost.units, computePath(cost.units)]))
  return (index) => paths.get(pick(costs, uniformAt(SEED, index)))!
}

/** How the scenario's costs read in a report: "5 ms" or "90% 5 ms, 10% 100 ms". */
export const describeCosts = (scenario: ScenarioSpec): string => {
  const costs = scenario.costs ?? [{ units: 1, weight: 1 }]
  const total = costs.reduce((sum, cost) => sum + cost.weight, 0)
  return costs.length === 1
    ? `${costs[0]!.units * UNIT_COST_MS} ms`
    : costs
        .map((cost) => `${Math.round((cost.weight / total) * 100)}% ${cost.units * UNIT_COST_MS} ms`)
        .join(", ")
}
