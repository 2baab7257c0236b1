/**
 * Session affinity: the consistent-hash ring (stickiness, minimal movement when replicas come and go,
 * shares by weight), the bounded load (a hot key never overloads its replica), and cookies (opaque,
 * sticky while the replica may take the request, renewed when it moves).
 */
import type { IncomingMessage } from "node:http"
import { describe, expect, it } from "@effect/vitest"
import { Effect, FastCheck as fc, Layer } from "effect"
import { withinBound } from "../../layers/affinity/bounded-load.ts"
import { cookieValue, tokenOf } from "../../layers/affinity/cookie.ts"
import { makeHashRing } from "../../layers/affinity/hash-ring.ts"
import { affinityLayer } from "../../layers/affinity/registry.ts"
import { Affinity } from "../../src/Affinity.ts"
import { configLayer, endpoints } from "./fakes.ts"

const keys = (count: number) => Array.from({ length: count }, (_, i) => `client-${i}`)
const always = () => true

describe("hash ring", () => {
  it.prop(
    "removing a replica moves only the keys it owned; adding one moves keys only to it",
    [fc.integer({ min: 2, max: 12 }), fc.nat()],
    ([count, which]) => {
      const all = endpoints(count)
      const removed = all[which % count]!
      const rest = all.filter((endpoint) => endpoint !== removed)
      const before = makeHashRing(all)
      const after = makeHashRing(rest)
      for (const key of keys(300)) {
        const owner = before.lookup(key, always)!
        const next = after.lookup(key, always)!
        // Read the other way, from `rest` to `all`, the keys that change owner all go to `removed`.
        if (owner !== removed) expect(next).toBe(owner)
      }
    },
  )

  it("gives each replica keys in proportion to its weight, within a few points", () => {
    const ring = makeHashRing(endpoints(3, [3, 1, 1]))
    const counts = new Map<unknown, number>()
    const all = keys(20_000)
    for (const key of all) {
      const owner = ring.lookup(key, always)
      counts.set(owner, (counts.get(owner) ?? 0) + 1)
    }
    const shares = [...counts.values()].map((n) => n / all.length).sort((a, b) => b - a)
    expect(Math.abs(shares[0]! - 0.6)).toBeLessThan(0.05)
    expect(Math.abs(shares[1]! - 0.2)).toBeLessThan(0.05)
  })

  it("passes a full owner's keys to the next owner clockwise, and to none when all are full", () => {
    const all = endpoints(3)
    const ring = makeHashRing(all)
    const owner = ring.lookup("hot", always)!
    const next = ring.lookup("hot", (endpoint) => endpoint !== owner)!
    expect(next).not.toBe(owner)
    expect(ring.lookup("hot", () => false)).toBeUndefined()
  })
})

describe("bounded load", () => {
  it.prop(
    "a hot key never takes its replica past the factor times its share",
    [fc.integer({ min: 2, max: 6 }), fc.array(fc.boolean(), { minLength: 50, maxLength: 300 })],
    ([count, steps]) => {
      const all = endpoints(count)
      const ring = makeHashRing(all)
      const factor = 1.5
      // Requests for one key arrive (true) and finish (false, oldest first) in any order.
      const held: Array<(typeof all)[number]> = []
      for (const arrives of steps) {
        if (!arrives) {
          const done = held.shift()
          if (done !== undefined) done.active--
          continue
        }
        const chosen = ring.lookup("one-hot-key", (endpoint) => withinBound(endpoint, all, factor))
        // With a factor of 1 or more some replica is always within its bound.
        expect(chosen).toBeDefined()
        const total = all.reduce((sum, endpoint) => sum + endpoint.active, 0) + 1
        expect(chosen!.active + 1).toBeLessThanOrEqual(Math.ceil((factor * total) / count))
        chosen!.active++
        held.push(chosen!)
      }
    },
  )
})

const request = (headers: Record<string, string>, remoteAddress = "10.0.0.7") =>
  ({ headers, socket: { remoteAddress } }) as unknown as IncomingMessage

const affinityWith = (env: Record<string, string>) => affinityLayer.pipe(Layer.provide(configLayer(env)))

describe("cookie affinity", () => {
  it("reads its cookie among others, and only its own", () => {
    expect(cookieValue("a=1; sg_default=abc; b=2", "sg_default")).toBe("abc")
    expect(cookieValue("xsg_default=no; sg_default=yes", "sg_default")).toBe("yes")
    expect(cookieValue("sg_defaultping=no", "sg_default")).toBeUndefined()
    expect(cookieValue(undefined, "sg_default")).toBeUndefined()
  })

  it.effect(
    "sets an opaque cookie, keeps to its replica while it may take the request, and renews on a move",
    () =>
      Effect.gen(function* () {
        const affinity = yield* Affinity
        const all = endpoints(3)
        const [a, b] = all
        const first = affinity.setCookie(undefined, a!)!
        expect(first).toMatch(/^sg_default=[0-9a-f]{16}; Path=\/; HttpOnly; SameSite=Lax$/)
        // Opaque: neither the address nor the id appears.
        expect(first).not.toContain(a!.replica.origin)
        expect(first).not.toContain(a!.id)
        const key = affinity.keyOf(request({ cookie: `sg_default=${tokenOf(a!)}` }))!
        expect(affinity.pick(key, all)).toBe(a)
        // Already bound to it: nothing to set.
        expect(affinity.setCookie(key, a!)).toBeUndefined()
        // No longer a candidate (unhealthy, ejected, drained): the selector chooses, and the cookie moves.
        expect(affinity.pick(key, [b!, all[2]!])).toBeUndefined()
        expect(affinity.setCookie(key, b!)).toBe(`sg_default=${tokenOf(b!)}; Path=/; HttpOnly; SameSite=Lax`)
        // A few requests of its own in flight do not move a session.
        a!.active = 6
        expect(affinity.pick(key, all)).toBe(a)
        // Far more loaded than the rest (over 1.5 times its share, and by more than 8): passed over.
        a!.active = 14
        expect(affinity.pick(key, all)).toBeUndefined()
      }).pipe(Effect.provide(affinityWith({ AFFINITY: "cookie" }))),
  )
})

describe("hash affinity", () => {
  it.effect("hash:<header> keys on the header, and leaves requests without it to the selector", () =>
    Effect.gen(function* () {
      const affinity = yield* Affinity
      expect(affinity.keyOf(request({ "x-user": "ann" }))).toBe("ann")
      expect(affinity.keyOf(request({}))).toBeUndefined()
      const all = endpoints(4)
      const chosen = affinity.pick("ann", all)
      for (let i = 0; i < 20; i++) expect(affinity.pick("ann", all)).toBe(chosen)
      expect(affinity.setCookie("ann", chosen!)).toBeUndefined()
    }).pipe(Effect.provide(affinityWith({ AFFINITY: "hash:X-User" }))),
  )

  it.effect("hash:ip keys on the client's address", () =>
    Effect.gen(function* () {
      const affinity = yield* Affinity
      expect(affinity.keyOf(request({}, "::ffff:10.1.2.3"))).toBe("10.1.2.3")
    }).pipe(Effect.provide(affinityWith({ AFFINITY: "hash:ip" }))),
  )
})
