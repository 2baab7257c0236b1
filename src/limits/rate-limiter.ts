/**
 * One route's client rate limit: which budget a request spends from (its client's address, a header's
 * value, or the route's one budget), the store's verdict, and the answer's headers. Those follow the
 * IETF httpapi draft: `RateLimit-Policy` names the policy (`q` requests per `w` seconds), `RateLimit`
 * says what is left now (`r` requests, full again in `t` seconds); a refused request also gets
 * `Retry-After`.
 */
import type { IncomingMessage } from "node:http"
import type { Refusal } from "../Attempt.ts"
import { type RateLimitStoreShape, type StoreVerdict, UNAVAILABLE } from "../RateLimitStore.ts"
import { clientIpOf, type TrustedProxies } from "./client-address.ts"
import type { RateVerdict } from "./gcra.ts"
import { intervalOf, type RateLimitPolicy } from "./rate.ts"

/** The budget of requests whose key header is missing: they all share it. */
export const UNKNOWN_KEY = "unknown"

export type RateDecision =
  | { readonly admitted: true; readonly headers: ReadonlyArray<string> }
  | { readonly admitted: false; readonly refusal: Refusal }

export interface RateLimitCounts {
  readonly admitted: number
  readonly limited: number
  /** Requests without the key header, counted in the shared `unknown` budget. */
  readonly unknownKey: number
  /** Refused with 503 because Redis could not decide (`RATE_LIMIT_ON_REDIS_ERROR=deny`). */
  readonly unavailable: number
}

export interface RateLimiter {
  readonly policy: RateLimitPolicy
  readonly check: (req: IncomingMessage) => RateDecision | Promise<RateDecision>
  readonly counts: () => RateLimitCounts
}

const wholeSeconds = (ms: number) => Math.ceil(ms / 1000)

export const makeRateLimiter = (
  routeName: string,
  policy: RateLimitPolicy,
  trusted: TrustedProxies | undefined,
  store: RateLimitStoreShape,
): RateLimiter => {
  const intervalMs = intervalOf(policy)
  const { burst, key } = policy
  // Route names are letters, digits, `_`, `.` and `-`: a valid structured-field string as they are.
  const policyHeader = `"${routeName}";q=${policy.count};w=${policy.periodMs / 1000}`
  let admitted = 0
  let limited = 0
  let unknownKey = 0
  let unavailable = 0

  const keyOf = (req: IncomingMessage): string => {
    if (key._tag === "Route") return `${routeName}|route`
    if (key._tag === "Ip") {
      return `${routeName}|ip|${clientIpOf(req.socket.remoteAddress, req.headers["x-forwarded-for"], trusted)}`
    }
    const value = req.headers[key.header]
    if (value === undefined || value === "") {
      unknownKey++
      return `${routeName}|header|${UNKNOWN_KEY}`
    }
    return `${routeName}|header|${typeof value === "string" ? value : value.join(",")}`
  }

  const stateHeader = (verdict: RateVerdict) =>
    `"${routeName}";r=${verdict.remaining};t=${wholeSeconds(verdict.resetMs)}`

  const decide = (verdict: StoreVerdict): RateDecision => {
    if (verdict === UNAVAILABLE) {
      unavailable++
      return {
        admitted: false,
        refusal: {
          status: 503,
          retryAfterSeconds: 1,
          body: {
            error: "rate_limit_unavailable",
            message: "the shared rate limit cannot be checked (Redis is unreachable)",
          },
        },
      }
    }
    const headers = ["ratelimit-policy", policyHeader, "ratelimit", stateHeader(verdict)]
    if (verdict.allowed) {
      admitted++
      return { admitted: true, headers }
    }
    limited++
    const retryAfterSeconds = Math.max(1, wholeSeconds(verdict.retryAfterMs))
    return {
      admitted: false,
      refusal: {
        status: 429,
        retryAfterSeconds,
        headers,
        body: {
          error: "rate_limited",
          message: `more than ${policy.count} requests per ${policy.periodMs / 1000} s (burst ${burst})`,
          retry_after_seconds: retryAfterSeconds,
        },
      },
    }
  }

  return {
    policy,
    check: (req) => {
      const verdict = store.take(keyOf(req), intervalMs, burst)
      return verdict instanceof Promise ? verdict.then(decide) : decide(verdict)
    },
    counts: () => ({ admitted, limited, unknownKey, unavailable }),
  }
}
