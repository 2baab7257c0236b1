/**
 * A consistent-hash ring over endpoints (Karger et al.; Ketama): each endpoint owns points on a 32-bit
 * ring in proportion to its weight, and a key goes to the owner of the first point at or after the
 * key's hash. Removing an endpoint moves only the keys it owned; adding one takes keys only for itself.
 */
import type { Endpoint } from "../../src/Endpoint.ts"

/** Points per unit of weight: enough that shares stay within a few percent of the weights. */
const POINTS_PER_WEIGHT = 160

/** FNV-1a, 32 bits, then a final avalanche so nearby strings land far apart on the ring. */
export const hash32 = (text: string): number => {
  let hash = 0x811c9dc5
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i)
    hash = Math.imul(hash, 0x01000193)
  }
  hash ^= hash >>> 16
  hash = Math.imul(hash, 0x85ebca6b)
  hash ^= hash >>> 13
  hash = Math.imul(hash, 0xc2b2ae35)
  hash ^= hash >>> 16
  return hash >>> 0
}

export interface HashRing {
  /**
   * The owner of `key`'s point, or the first owner after it that `accept`s the request (each endpoint
   * asked once); undefined when none does.
   */
  readonly lookup: (key: string, accept: (endpoint: Endpoint) => boolean) => Endpoint | undefined
}

export const makeHashRing = (endpoints: ReadonlyArray<Endpoint>): HashRing => {
  const points: Array<{ readonly at: number; readonly endpoint: Endpoint }> = []
  for (const endpoint of endpoints) {
    const count = Math.max(1, Math.round(POINTS_PER_WEIGHT * endpoint.weight))
    // Points hash the replica's id, not its position, so they do not move when others come and go.
    for (let i = 0; i < count; i++) points.push({ at: hash32(`${endpoint.id}#${i}`), endpoint })
  }
  points.sort((a, b) => a.at - b.at)
  const at = Uint32Array.from(points, (point) => point.at)
  const owners = points.map((point) => point.endpoint)

  const firstAtOrAfter = (value: number): number => {
    let low = 0
    let high = at.length
    while (low < high) {
      const middle = (low + high) >>> 1
      if (at[middle]! < value) low = middle + 1
      else high = middle
    }
    return low === at.length ? 0 : low
  }

  return {
    lookup: (key, accept) => {
      if (owners.length === 0) return undefined
      const start = firstAtOrAfter(hash32(key))
      const owner = owners[start]!
      if (accept(owner)) return owner
      // The owner is full: the next owners clockwise, each asked once.
      const asked = new Set<Endpoint>([owner])
      for (let step = 1; step < owners.length && asked.size < endpoints.length; step++) {
        const owner = owners[(start + step) % owners.length]!
        if (asked.has(owner)) continue
        asked.add(owner)
        if (accept(owner)) return owner
      }
      return undefined
    },
  }
}
