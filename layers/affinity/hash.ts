/**
 * Hash affinity (`hash:ip`, `hash:<header>`): consistent hashing with bounded loads. A key's replica
 * is the owner of its point on a ring of the candidates; while that replica would exceed its bounded
 * share, the next owner clockwise takes the request. Removing a replica moves only its own keys. The
 * ring is rebuilt when the candidates change (the pool caches them, so that is rare). A request
 * without the header is the selector's to place.
 */
import type { IncomingMessage } from "node:http"
import { Effect, Layer } from "effect"
import { Affinity } from "../../src/Affinity.ts"
import { LbConfig } from "../../src/Config.ts"
import type { Endpoint } from "../../src/Endpoint.ts"
import { clientAddressOf } from "../proxy/headers.ts"
import { withinBound } from "./bounded-load.ts"
import { type HashRing, makeHashRing } from "./hash-ring.ts"

const headerKey = (name: string) => (req: IncomingMessage) => {
  const value = req.headers[name]
  return Array.isArray(value) ? value.join(",") : value
}

const addressKey = (req: IncomingMessage) => clientAddressOf(req.socket.remoteAddress)

export const layer = Layer.effect(
  Affinity,
  Effect.map(LbConfig, (config) => {
    const affinity = config.affinity
    const keyOf =
      affinity?._tag === "Hash" && affinity.key === "header" ? headerKey(affinity.header) : addressKey
    const factor = config.affinityLoadFactor
    let ringOf: ReadonlyArray<Endpoint> | undefined
    let ring: HashRing = makeHashRing([])
    return {
      keyOf,
      pick: (key, candidates) => {
        if (candidates !== ringOf) {
          ringOf = candidates
          ring = makeHashRing(candidates)
        }
        return ring.lookup(key, (endpoint) => withinBound(endpoint, candidates, factor))
      },
      setCookie: () => undefined,
    }
  }),
)
