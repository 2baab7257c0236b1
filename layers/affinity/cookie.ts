/**
 * Cookie affinity, as HAProxy's inserted cookies and Envoy's generated cookies: the first answer sets
 * `sg_<route>` to an opaque token of the replica (a hash of its id, which names no address and is the
 * same on every balancer), and later requests carrying it go to that replica while it is a candidate
 * (healthy, not ejected, not drained) and not far more loaded than the rest (bounded load, with slack). Otherwise the selector chooses,
 * and the answer renews the cookie for the new replica.
 */
import { createHash } from "node:crypto"
import { Effect, Layer } from "effect"
import { Affinity } from "../../src/Affinity.ts"
import { LbConfig } from "../../src/Config.ts"
import type { Endpoint } from "../../src/Endpoint.ts"
import { withinBound } from "./bounded-load.ts"

/**
 * A session's replica is "far more loaded than the rest" only when it is over its bound by more than
 * this many requests too: one client's few parallel requests, all on its own replica, never break its
 * session, while a replica that a crowd of sessions overloads still sheds new requests.
 */
const SESSION_SLACK = 8

const tokens = new WeakMap<Endpoint, string>()

/** The endpoint's token: 16 hex digits of SHA-256 over its id, computed once. */
export const tokenOf = (endpoint: Endpoint): string => {
  let token = tokens.get(endpoint)
  if (token === undefined) {
    token = createHash("sha256").update(endpoint.id).digest("hex").slice(0, 16)
    tokens.set(endpoint, token)
  }
  return token
}

/** The value of cookie `name` in a request's `Cookie` header, if it has one. */
export const cookieValue = (header: string | undefined, name: string): string | undefined => {
  if (header === undefined) return undefined
  let at = header.indexOf(name)
  while (at !== -1) {
    const starts = at === 0 || header[at - 1] === " " || header[at - 1] === ";"
    if (starts && header[at + name.length] === "=") {
      const from = at + name.length + 1
      const end = header.indexOf(";", from)
      return header.slice(from, end === -1 ? undefined : end).trim()
    }
    at = header.indexOf(name, at + 1)
  }
  return undefined
}

export const layer = Layer.effect(
  Affinity,
  Effect.map(LbConfig, (config) => {
    // Route names are cookie-name characters already (letters, digits, `_`, `.`, `-`).
    const name = `sg_${config.routeName}`
    const factor = config.affinityLoadFactor
    return {
      keyOf: (req) => cookieValue(req.headers.cookie, name),
      pick: (key, candidates) => {
        for (const candidate of candidates) {
          if (tokenOf(candidate) !== key) continue
          return withinBound(candidate, candidates, factor, SESSION_SLACK) ? candidate : undefined
        }
        return undefined
      },
      setCookie: (key, endpoint) => {
        const token = tokenOf(endpoint)
        return key === token ? undefined : `${name}=${token}; Path=/; HttpOnly; SameSite=Lax`
      },
    }
  }),
)
