/**
 * Where client rate-limit budgets are kept: in this process, or in Redis so that every balancer
 * instance spends from the same budget per key. One store serves every route (keys carry the route's
 * name), as one LeaseStore does. A decision is synchronous in memory and a promise through Redis; the
 * data plane takes either without a fiber.
 */
import { Context } from "effect"
import type { RateVerdict } from "./limits/gcra.ts"

/** Redis could not decide and `RATE_LIMIT_ON_REDIS_ERROR=deny`: the request is refused. */
export const UNAVAILABLE = "unavailable"

export type StoreVerdict = RateVerdict | typeof UNAVAILABLE

export interface RateLimitStoreStatus {
  readonly backend: "memory" | "redis"
  /** Redis is unreachable: decisions follow `RATE_LIMIT_ON_REDIS_ERROR`. Never for memory. */
  readonly degraded: boolean
  /** Outages begun (each logged once), and Redis calls that failed or timed out. */
  readonly outages: number
  readonly redisErrors: number
  /** Decisions taken by this balancer alone, or refused, because Redis was unreachable. */
  readonly localDecisions: number
  readonly unavailableDecisions: number
}

export interface RateLimitStoreShape {
  /** Takes one request from `key`'s budget: `intervalMs` between requests on average, `burst` at once. */
  readonly take: (key: string, intervalMs: number, burst: number) => StoreVerdict | Promise<StoreVerdict>
  readonly status: () => RateLimitStoreStatus
}

export class RateLimitStore extends Context.Tag("swarmguard/RateLimitStore")<
  RateLimitStore,
  RateLimitStoreShape
>() {}
