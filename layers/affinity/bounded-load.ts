/**
 * Consistent hashing with bounded loads (Mirrokni, Thorup and Zadimoghaddam; HAProxy's
 * `hash-balance-factor`, Envoy's `hash_balance_factor`): a replica a key or a cookie points at takes
 * the request only while, with it, the replica would hold at most `factor` times its weighted share
 * of the requests in flight. So one hot key, or a crowd of sessions on one replica, spills to the
 * next instead of overloading it.
 */
import type { Endpoint } from "../../src/Endpoint.ts"

/**
 * Whether `endpoint` may take one more request among `candidates`: with it, at most `factor` times its
 * weighted share of the requests in flight, or at most `slack` requests over that share, whichever
 * allows more.
 */
export const withinBound = (
  endpoint: Endpoint,
  candidates: ReadonlyArray<Endpoint>,
  factor: number,
  slack = 0,
): boolean => {
  let active = 0
  let weight = 0
  for (const candidate of candidates) {
    active += candidate.active
    weight += candidate.weight
  }
  const share = ((active + 1) * endpoint.weight) / weight
  // Rounded up, so at low traffic (one request in flight) every replica may take one.
  return endpoint.active + 1 <= Math.max(Math.ceil(factor * share), share + slack)
}
