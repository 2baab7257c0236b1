/**
 * Client rate limits: the words that configure them, the client address they count by (believing
 * `X-Forwarded-For` only from trusted proxies, read from the right), and one route's limiter over the
 * in-memory store on TestClock: its budgets per key, headers and 429 answers.
 */
import type { IncomingMessage } from "node:http"
import { describe, expect, it } from "@effect/vitest"
import { Effect, TestClock } from "effect"
import { layer as memoryStoreLayer } from "../../layers/rate-limit-store/memory.ts"
import { clientIpOf, parseTrustedProxies, type TrustedProxies } from "../../src/limits/client-address.ts"
import { defaultBurst, parseRate, parseRateLimitKey, type RateLimitPolicy } from "../../src/limits/rate.ts"
import { makeRateLimiter, type RateDecision } from "../../src/limits/rate-limiter.ts"
import { RateLimitStore, type RateLimitStoreShape, UNAVAILABLE } from "../../src/RateLimitStore.ts"

describe("parseRate", () => {
  it("reads a whole count per second, minute or hour", () => {
    expect(parseRate("100/s")).toEqual({ count: 100, periodMs: 1_000 })
    expect(parseRate("6000/m")).toEqual({ count: 6_000, periodMs: 60_000 })
    expect(parseRate("10/h")).toEqual({ count: 10, periodMs: 3_600_000 })
    expect(parseRate(" 5 / s ")).toEqual({ count: 5, periodMs: 1_000 })
    expect(parseRate("007/m")).toEqual({ count: 7, periodMs: 60_000 })
  })

  it("refuses anything else", () => {
    for (const text of [
      "",
      "100",
      "/s",
      "0/s",
      "-1/s",
      "1.5/s",
      "1e3/s",
      "100/d",
      "100/S",
      "100/sec",
      "s/100",
    ]) {
      expect(parseRate(text), text).toBeUndefined()
    }
  })

  it("makes one second's worth the default burst, one at least", () => {
    expect(defaultBurst({ count: 100, periodMs: 1_000 })).toBe(100)
    expect(defaultBurst({ count: 6_000, periodMs: 60_000 })).toBe(100)
    expect(defaultBurst({ count: 90, periodMs: 60_000 })).toBe(2)
    expect(defaultBurst({ count: 10, periodMs: 3_600_000 })).toBe(1)
  })
})

describe("parseRateLimitKey", () => {
  it("reads ip, route and header:<name>, the header's name in lower case", () => {
    expect(parseRateLimitKey("ip")).toEqual({ _tag: "Ip" })
    expect(parseRateLimitKey(" route ")).toEqual({ _tag: "Route" })
    expect(parseRateLimitKey("header:X-Api-Key")).toEqual({ _tag: "Header", header: "x-api-key" })
  })

  it("refuses anything else, and header names that are not tokens", () => {
    for (const text of ["", "IP", "client", "header", "header:", "header:a b", "header:a:b", "cookie:x"]) {
      expect(parseRateLimitKey(text), text).toBeUndefined()
    }
  })
})

describe("parseTrustedProxies", () => {
  it("takes addresses and CIDR blocks of either family", () => {
    const trusted = parseTrustedProxies(["10.0.0.0/8", "192.168.1.7", "fd00::/8", "::1"])!
    expect(trusted).toBeDefined()
    expect(trusted.check("10.200.0.1", "ipv4")).toBe(true)
    expect(trusted.check("192.168.1.7", "ipv4")).toBe(true)
    expect(trusted.check("192.168.1.8", "ipv4")).toBe(false)
    expect(trusted.check("fd12::5", "ipv6")).toBe(true)
    expect(trusted.check("::1", "ipv6")).toBe(true)
    expect(trusted.check("2001:db8::1", "ipv6")).toBe(false)
  })

  it("refuses an entry that is neither", () => {
    for (const entry of [
      "proxy.example",
      "10.0.0.0/33",
      "::/129",
      "10.0.0.0/",
      "10.0.0.0/8/1",
      "10.0.0.0/-1",
    ]) {
      expect(parseTrustedProxies(["10.0.0.1", entry]), entry).toBeUndefined()
    }
  })
})

describe("clientIpOf", () => {
  const trusted = parseTrustedProxies(["10.0.0.0/8", "fd00::/8"])!

  it("is the socket's peer without trusted proxies, whatever the header says", () => {
    expect(clientIpOf("203.0.113.9", "198.51.100.1", undefined)).toBe("203.0.113.9")
    expect(clientIpOf("::ffff:203.0.113.9", undefined, undefined)).toBe("203.0.113.9")
    expect(clientIpOf(undefined, "198.51.100.1", undefined)).toBe("unknown")
  })

  it("ignores the header from a peer that is not trusted", () => {
    expect(clientIpOf("203.0.113.9", "198.51.100.1", trusted)).toBe("203.0.113.9")
    expect(clientIpOf("::ffff:203.0.113.9", "10.0.0.5", trusted)).toBe("203.0.113.9")
  })

  it("reads the header from the right past the trusted proxies, so a client cannot pick its own key", () => {
    expect(clientIpOf("10.0.0.2", "198.51.100.1", trusted)).toBe("198.51.100.1")
    // The client wrote the leftmost entry itself; the trusted proxy appended the address it saw.
    expect(clientIpOf("10.0.0.2", "1.1.1.1, 198.51.100.1, 10.0.0.3", trusted)).toBe("198.51.100.1")
    expect(clientIpOf("fd00::2", "2001:db8::7, fd00::3", trusted)).toBe("2001:db8::7")
  })

  it("treats IPv4-mapped addresses as the IPv4 address, in the peer and in the header", () => {
    expect(clientIpOf("::ffff:10.0.0.2", "198.51.100.1", trusted)).toBe("198.51.100.1")
    expect(clientIpOf("10.0.0.2", "::ffff:198.51.100.1, ::ffff:10.0.0.3", trusted)).toBe("198.51.100.1")
  })

  it("reads several X-Forwarded-For headers as one list, in order", () => {
    expect(clientIpOf("10.0.0.2", ["1.1.1.1, 198.51.100.1", "10.0.0.3"], trusted)).toBe("198.51.100.1")
    expect(clientIpOf("10.0.0.2", ["198.51.100.1", "203.0.113.4,10.0.0.3"], trusted)).toBe("203.0.113.4")
  })

  it("takes the first hop when every hop is trusted, and the peer when the header is empty", () => {
    expect(clientIpOf("10.0.0.2", "10.0.0.9, 10.0.0.4", trusted)).toBe("10.0.0.9")
    expect(clientIpOf("10.0.0.2", "", trusted)).toBe("10.0.0.2")
    expect(clientIpOf("10.0.0.2", " , ", trusted)).toBe("10.0.0.2")
    expect(clientIpOf("10.0.0.2", undefined, trusted)).toBe("10.0.0.2")
  })
})

/** What the limiter reads of a request: the socket's peer and the headers. */
const request = (remoteAddress: string | undefined, headers: Record<string, string | Array<string>> = {}) =>
  ({ socket: { remoteAddress }, headers }) as unknown as IncomingMessage

const policy = (
  count: number,
  periodMs: number,
  burst: number,
  key: RateLimitPolicy["key"] = { _tag: "Ip" },
): RateLimitPolicy => ({ count, periodMs, burst, key })

/** The decision of a store that answers at once (memory): never a promise. */
const decided = (decision: RateDecision | Promise<RateDecision>): RateDecision => {
  expect(decision).not.toBeInstanceOf(Promise)
  return decision as RateDecision
}

const admitted = (decision: RateDecision | Promise<RateDecision>) => decided(decision).admitted

/** `count` requests from `req`, whether each was admitted. */
const burstOf =
  (check: (req: IncomingMessage) => RateDecision | Promise<RateDecision>, req: IncomingMessage) =>
  (count: number) =>
    Array.from({ length: count }, () => admitted(check(req)))

const limiterOn = (routeName: string, rate: RateLimitPolicy, trusted?: TrustedProxies) =>
  Effect.map(RateLimitStore, (store) => makeRateLimiter(routeName, rate, trusted, store))

describe("rate limiter", () => {
  it.effect("says the policy and what is left in every answer, and refuses past the burst with 429", () =>
    Effect.gen(function* () {
      const limiter = yield* limiterOn("api", policy(1, 1_000, 3))
      const client = request("203.0.113.9")
      const answers = [0, 1, 2].map(() => decided(limiter.check(client)))
      expect(answers).toEqual([
        { admitted: true, headers: ["ratelimit-policy", '"api";q=1;w=1', "ratelimit", '"api";r=2;t=1'] },
        { admitted: true, headers: ["ratelimit-policy", '"api";q=1;w=1', "ratelimit", '"api";r=1;t=2'] },
        { admitted: true, headers: ["ratelimit-policy", '"api";q=1;w=1', "ratelimit", '"api";r=0;t=3'] },
      ])
      expect(decided(limiter.check(client))).toEqual({
        admitted: false,
        refusal: {
          status: 429,
          retryAfterSeconds: 1,
          headers: ["ratelimit-policy", '"api";q=1;w=1', "ratelimit", '"api";r=0;t=3'],
          body: {
            error: "rate_limited",
            message: "more than 1 requests per 1 s (burst 3)",
            retry_after_seconds: 1,
          },
        },
      })
      expect(limiter.counts()).toEqual({ admitted: 3, limited: 1, unknownKey: 0, unavailable: 0 })
      // A second later one more is admitted, and the bucket is full again two seconds after that.
      yield* TestClock.adjust("999 millis")
      expect(admitted(limiter.check(client))).toBe(false)
      yield* TestClock.adjust("1 millis")
      expect(decided(limiter.check(client))).toEqual({
        admitted: true,
        headers: ["ratelimit-policy", '"api";q=1;w=1', "ratelimit", '"api";r=0;t=3'],
      })
    }).pipe(Effect.provide(memoryStoreLayer)),
  )

  it.effect("gives Retry-After in whole seconds, rounded up, never below 1", () =>
    Effect.gen(function* () {
      const hourly = yield* limiterOn("slow", policy(10, 3_600_000, 1))
      const client = request("203.0.113.9")
      expect(decided(hourly.check(client))).toMatchObject({
        headers: ["ratelimit-policy", '"slow";q=10;w=3600', "ratelimit", '"slow";r=0;t=360'],
      })
      yield* TestClock.adjust("1500 millis")
      const refused = decided(hourly.check(client))
      expect(refused).toMatchObject({
        admitted: false,
        refusal: { status: 429, retryAfterSeconds: 359, body: { retry_after_seconds: 359 } },
      })

      // 3/s: the next slot is a third of a millisecond away, and still a whole second to the client.
      const fast = yield* limiterOn("fast", policy(3, 1_000, 1))
      expect(admitted(fast.check(client))).toBe(true)
      yield* TestClock.adjust("333 millis")
      expect(decided(fast.check(client))).toMatchObject({
        admitted: false,
        refusal: {
          retryAfterSeconds: 1,
          headers: ["ratelimit-policy", '"fast";q=3;w=1', "ratelimit", '"fast";r=0;t=1'],
        },
      })
      yield* TestClock.adjust("1 millis")
      expect(admitted(fast.check(client))).toBe(true)
    }).pipe(Effect.provide(memoryStoreLayer)),
  )

  it.effect("says a minute's policy as w=60", () =>
    Effect.gen(function* () {
      const limiter = yield* limiterOn("api", policy(6_000, 60_000, 100))
      expect(decided(limiter.check(request("203.0.113.9")))).toMatchObject({
        headers: ["ratelimit-policy", '"api";q=6000;w=60', "ratelimit", '"api";r=99;t=1'],
      })
    }).pipe(Effect.provide(memoryStoreLayer)),
  )

  it.effect("keeps a budget per client address, behind trusted proxies by X-Forwarded-For", () =>
    Effect.gen(function* () {
      const limiter = yield* limiterOn("api", policy(1, 1_000, 2), parseTrustedProxies(["10.0.0.0/8"]))
      const a = burstOf(limiter.check, request("203.0.113.1"))
      const b = burstOf(limiter.check, request("::ffff:203.0.113.2"))
      const viaProxy = burstOf(limiter.check, request("10.0.0.2", { "x-forwarded-for": "198.51.100.1" }))
      // A client that sends its own header past an untrusted peer spends its peer's budget still.
      const spoofing = burstOf(limiter.check, request("203.0.113.1", { "x-forwarded-for": "198.51.100.9" }))
      expect(a(2)).toEqual([true, true])
      expect(b(3)).toEqual([true, true, false])
      expect(viaProxy(3)).toEqual([true, true, false])
      expect(spoofing(1)).toEqual([false])
      // The same client through another proxy is the same client.
      expect(admitted(limiter.check(request("10.9.9.9", { "x-forwarded-for": "198.51.100.1" })))).toBe(false)
      expect(limiter.counts()).toMatchObject({ admitted: 6, limited: 4 })
    }).pipe(Effect.provide(memoryStoreLayer)),
  )

  it.effect("keeps a budget per header value; requests without the header share `unknown`, counted", () =>
    Effect.gen(function* () {
      const limiter = yield* limiterOn("api", policy(1, 1_000, 2, { _tag: "Header", header: "x-api-key" }))
      const alice = burstOf(limiter.check, request("203.0.113.1", { "x-api-key": "alice" }))
      const bob = burstOf(limiter.check, request("203.0.113.1", { "x-api-key": "bob" }))
      const anonymous = burstOf(limiter.check, request("203.0.113.2"))
      const empty = burstOf(limiter.check, request("203.0.113.3", { "x-api-key": "" }))
      expect(alice(3)).toEqual([true, true, false])
      expect(bob(2)).toEqual([true, true])
      // Two clients without a key, from two addresses, spend from one budget.
      expect(anonymous(1)).toEqual([true])
      expect(empty(2)).toEqual([true, false])
      expect(limiter.counts()).toEqual({ admitted: 6, limited: 2, unknownKey: 3, unavailable: 0 })
    }).pipe(Effect.provide(memoryStoreLayer)),
  )

  it.effect("with the route key, every client spends from the route's one budget", () =>
    Effect.gen(function* () {
      const limiter = yield* limiterOn("api", policy(1, 1_000, 2, { _tag: "Route" }))
      const other = yield* limiterOn("other", policy(1, 1_000, 2, { _tag: "Route" }))
      expect(admitted(limiter.check(request("203.0.113.1")))).toBe(true)
      expect(admitted(limiter.check(request("203.0.113.2", { "x-api-key": "k" })))).toBe(true)
      expect(admitted(limiter.check(request("198.51.100.1")))).toBe(false)
      // Another route's budget is its own, in the same store.
      expect(admitted(other.check(request("203.0.113.1")))).toBe(true)
      expect(limiter.counts()).toEqual({ admitted: 2, limited: 1, unknownKey: 0, unavailable: 0 })
    }).pipe(Effect.provide(memoryStoreLayer)),
  )

  it("refuses with 503 when the store cannot decide, and waits for a store that answers later", async () => {
    const unavailable: RateLimitStoreShape = {
      take: () => UNAVAILABLE,
      status: () => ({
        backend: "redis",
        degraded: true,
        outages: 1,
        redisErrors: 1,
        localDecisions: 0,
        unavailableDecisions: 1,
      }),
    }
    const limiter = makeRateLimiter("api", policy(1, 1_000, 1), undefined, unavailable)
    expect(decided(limiter.check(request("203.0.113.1")))).toMatchObject({
      admitted: false,
      refusal: { status: 503, retryAfterSeconds: 1, body: { error: "rate_limit_unavailable" } },
    })
    expect(limiter.counts()).toEqual({ admitted: 0, limited: 0, unknownKey: 0, unavailable: 1 })

    const keys: Array<string> = []
    const later: RateLimitStoreShape = {
      take: (key) => {
        keys.push(key)
        return Promise.resolve({ allowed: true, remaining: 4, resetMs: 1_500, retryAfterMs: 0 })
      },
      status: unavailable.status,
    }
    const remote = makeRateLimiter("api", policy(1, 1_000, 5), undefined, later)
    expect(await remote.check(request("203.0.113.1"))).toEqual({
      admitted: true,
      headers: ["ratelimit-policy", '"api";q=1;w=1', "ratelimit", '"api";r=4;t=2'],
    })
    expect(keys).toEqual(["api|ip|203.0.113.1"])
  })
})
