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
