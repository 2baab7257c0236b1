/**
 * Session affinity: what binds a request to one replica of its route (a cookie the balancer set, or a
 * hash of the client's address or of a header), and which endpoint that is while it may take the
 * request. One layer per kind; a route's `affinity` setting chooses (`layers/affinity/registry.ts`).
 * All synchronous: they run on the data plane for every request.
 */
import type { IncomingMessage } from "node:http"
import { Context } from "effect"
import type { Endpoint } from "./Endpoint.ts"

export interface AffinityShape {
  /** What binds this request: the cookie's value or the hashed key; undefined when nothing does. */
  readonly keyOf: (req: IncomingMessage) => string | undefined
  /**
   * The candidate `key` is bound to, when it may take one more request (bounded loads); undefined
   * sends the request to the selector.
   */
  readonly pick: (key: string, candidates: ReadonlyArray<Endpoint>) => Endpoint | undefined
  /** A `Set-Cookie` value for the answer when the client should be bound (anew) to `endpoint`. */
  readonly setCookie: (key: string | undefined, endpoint: Endpoint) => string | undefined
}

export class Affinity extends Context.Tag("swarmguard/Affinity")<Affinity, AffinityShape>() {}
