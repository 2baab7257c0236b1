/**
 * A client rate limit as written (`100/s`, `6000/m`, a burst, what it counts by), decoded once: the
 * same words in the environment, a routes file and a service's labels.
 */
import { HTTP_TOKEN } from "../routes/rule-syntax.ts"

/** What one budget is counted per: the client's address, a header's value, or the whole route. */
export type RateLimitKey =
  | { readonly _tag: "Ip" }
  | { readonly _tag: "Header"; readonly header: string }
  | { readonly _tag: "Route" }

export interface RateLimitPolicy {
  /** Requests admitted per `periodMs` on average. */
  readonly count: number
  readonly periodMs: number
  /** Requests an idle key may send at once: the bucket's size. */
  readonly burst: number
  readonly key: RateLimitKey
}

const PERIOD_MS: Readonly<Record<string, number>> = { s: 1_000, m: 60_000, h: 3_600_000 }

export const RATE_EXPECTED = "a rate such as 100/s, 6000/m or 10/h (a whole number per s, m or h)"
export const KEY_EXPECTED = "ip, route or header:<name>"

/** `100/s` as a count per period; undefined when it is not a rate. */
export const parseRate = (text: string): { count: number; periodMs: number } | undefined => {
  const match = /^(\d+)\s*\/\s*([smh])$/.exec(text.trim())
  if (match === null) return undefined
  const count = Number(match[1])
  return count > 0 ? { count, periodMs: PERIOD_MS[match[2]!]! } : undefined
}

export const parseRateLimitKey = (text: string): RateLimitKey | undefined => {
  const value = text.trim()
  if (value === "ip") return { _tag: "Ip" }
  if (value === "route") return { _tag: "Route" }
  if (!value.startsWith("header:")) return undefined
  const header = value.slice("header:".length)
  return HTTP_TOKEN.test(header) ? { _tag: "Header", header: header.toLowerCase() } : undefined
}

/** An unset burst: one second's worth of the rate, at least one request. */
export const defaultBurst = (rate: { count: number; periodMs: number }): number =>
  Math.max(1, Math.ceil((rate.count * 1_000) / rate.periodMs))

/** The time between two requests at the average rate. */
export const intervalOf = (policy: RateLimitPolicy): number => policy.periodMs / policy.count

export const keyText = (key: RateLimitKey): string =>
  key._tag === "Ip" ? "ip" : key._tag === "Route" ? "route" : `header:${key.header}`
