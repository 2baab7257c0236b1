/** Turn-taking shared by the selectors: a rotation that respects weights, and ties that take turns. */
import type { Endpoint } from "../../src/Endpoint.ts"
import type { Choice } from "../../src/Selector.ts"

/**
 * Index of the smallest `valueAt(i)` for i in [0, count), scanning from `start` so that ties go to
 * the first minimum after a rotating offset. With "first of the minimum" every tie (e.g. all lease
 * counts 0 at low concurrency) would go to replica 0.
 */
export const argminFrom = (count: number, start: number, valueAt: (index: number) => number): number => {
  let best = start % count
  let bestValue = valueAt(best)
  for (let step = 1; step < count; step++) {
    const index = (start + step) % count
    const value = valueAt(index)
    if (value < bestValue) {
      best = index
      bestValue = value
    }
  }
  return best
}

/**
 * Per-weight loads this close are level: differences smaller than one and a half requests of the
 * lighter endpoint. In-flight counts are whole requests, so at weights 3 and 1 even 2 against 0 is as
 * close to the weights as a few requests allow; between level loads the weighted rotation decides.
 * A closed-loop simulation of equal replicas at weights 2:1 to 10:1 and 3:2:1, with 1 to 64 requests
 * in flight, keeps every share within 1.1 points of its weight at 1.5; at 1 the shares fell 5 points
 * short at 8 in flight (an endpoint over by a request stayed over), and at 2 drifted beyond 64.
 */
const LEVEL_MARGIN = 1.5

/** Endpoints of equal weight are level only at equal loads: among them least-loaded is exact. */
export const isLevel = (loadA: number, weightA: number, loadB: number, weightB: number): boolean =>
  weightA === weightB ? loadA === loadB : Math.abs(loadA - loadB) < LEVEL_MARGIN / Math.min(weightA, weightB)

/**
 * Like `argminFrom` over per-weight loads, where a load must be lower beyond the level margin to take
 * the place of the one found so far: between level loads the rotation's choice stays, so shares
 * follow the weights however few requests are in flight.
 */
export const weightedArgminFrom = (endpoints: ReadonlyArray<Endpoint>, start: number): number => {
  const count = endpoints.length
  let best = start % count
  for (let step = 1; step < count; step++) {
    const index = (start + step) % count
    const a = endpoints[best]!
    const b = endpoints[index]!
    const loadA = a.active / a.effectiveWeight
    const loadB = b.active / b.effectiveWeight
    if (loadB < loadA && !isLevel(loadA, a.effectiveWeight, loadB, b.effectiveWeight)) best = index
  }
  return best
}

/** The endpoint with the fewest requests in flight per unit of weight, ties going to `start`'s turn. */
export const leastLoadedFrom = ({ endpoints, uniform }: Choice, start: number): number =>
  uniform
    ? argminFrom(endpoints.length, start, (i) => endpoints[i]!.active)
    : weightedArgminFrom(endpoints, start)

/** A counter that hands out rotation offsets. */
export const makeTurns = () => {
  let turn = 0
  return (): number => {
    const current = turn
    turn = (turn + 1) % Number.MAX_SAFE_INTEGER
    return current
  }
}

/**
 * Smooth weighted round robin, as NGINX's: every endpoint earns its weight in credit, the richest is
 * chosen and pays the total. Picks come in proportion to the weights and spread out (weights 5, 1, 1
 * give a a b a c a a, not a a a a a b c).
 */
export const smoothWeighted = (endpoints: ReadonlyArray<Endpoint>): number => {
  let total = 0
  let best = 0
  for (let i = 0; i < endpoints.length; i++) {
    const endpoint = endpoints[i]!
    endpoint.rotationCredit += endpoint.effectiveWeight
    total += endpoint.effectiveWeight
    if (endpoint.rotationCredit > endpoints[best]!.rotationCredit) best = i
  }
  endpoints[best]!.rotationCredit -= total
  return best
}

/**
 * The index of the next endpoint in rotation: plain turns while the weights are equal (the common case
 * costs a counter), smooth weighted round robin while they differ (slow start, configured weights).
 */
export const makeRotation = () => {
  const nextTurn = makeTurns()
  return ({ endpoints, uniform }: Choice): number =>
    uniform ? nextTurn() % endpoints.length : smoothWeighted(endpoints)
}
