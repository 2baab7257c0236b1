/**
 * Leases on endpoints: one is taken when a request is routed and released when it ends, and the
 * endpoint's `active` count is the number it holds. `LEASE_DURATION` only guards against leaks.
 * `acquire`/`release` are synchronous because the data plane calls them per request; expiry runs in a
 * background fiber.
 */
import { Context, type Effect } from "effect"
import type { Endpoint } from "./Endpoint.ts"

export interface Lease {
  readonly id: number
  readonly endpoint: Endpoint
  readonly expiresAt: number
}

export interface LeaseTotals {
  readonly acquired: number
  readonly released: number
  readonly expired: number
  readonly active: number
}

export interface LeaseStoreShape {
  readonly acquire: (endpoint: Endpoint) => Lease
  /**
   * The same lease with a new `LEASE_DURATION` from now, for work that rightly outlives one (an
   * upgraded connection). A lease that expired meanwhile is taken anew.
   */
  readonly renew: (lease: Lease) => Lease
  /** Idempotent: a lease already released or expired is left alone. */
  readonly release: (lease: Lease) => void
  readonly totals: () => LeaseTotals
  /** Expires every lease due now; returns how many. The layer's fiber runs it on a schedule. */
  readonly expireDue: Effect.Effect<number>
}

export class LeaseStore extends Context.Tag("swarmguard/LeaseStore")<LeaseStore, LeaseStoreShape>() {}
