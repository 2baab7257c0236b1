/** LeaseStore: acquire/release, expiry at exactly LEASE_DURATION on the cleanup fiber's cadence, invariants. */
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, FastCheck as fc, Layer, TestClock } from "effect"
import { make, layer as memoryLeaseLayer } from "../../layers/lease-store/memory.ts"
import { type Lease, LeaseStore } from "../../src/LeaseStore.ts"
import { configLayer, endpoints } from "./fakes.ts"

const storeLayer = (env: Record<string, string>) => memoryLeaseLayer.pipe(Layer.provide(configLayer(env)))

describe("LeaseStore (memory)", () => {
  it.effect("counts active leases per endpoint and releases each once", () =>
    Effect.gen(function* () {
      const leases = yield* LeaseStore
      const [a, b, c] = endpoints(3)
      const a1 = leases.acquire(a!)
      leases.acquire(a!)
      leases.acquire(b!)
      expect(a1.endpoint).toBe(a)
      expect([a!.active, b!.active, c!.active]).toEqual([2, 1, 0])
      leases.release(a1)
      leases.release(a1)
      expect(a!.active).toBe(1)
      expect(leases.totals()).toEqual({ acquired: 3, released: 1, expired: 0, active: 2 })
    }).pipe(Effect.provide(storeLayer({}))),
  )

  it.effect("expires an unreleased lease at exactly LEASE_DURATION", () =>
    Effect.gen(function* () {
      const leases = yield* LeaseStore
      const [a] = endpoints(1)
      const lease = leases.acquire(a!)
      yield* TestClock.adjust("29999 millis")
      expect(a!.active).toBe(1)
      yield* TestClock.adjust("1 millis")
      expect(a!.active).toBe(0)
      expect(leases.totals()).toEqual({ acquired: 1, released: 0, expired: 1, active: 0 })
      // A late release of an expired lease changes nothing.
      leases.release(lease)
      expect(leases.totals()).toEqual({ acquired: 1, released: 0, expired: 1, active: 0 })
      expect(a!.active).toBe(0)
    }).pipe(Effect.provide(storeLayer({ LEASE_DURATION: "30", LEASE_CLEANUP_INTERVAL: "1" }))),
  )

  it.effect("a renewed lease lasts LEASE_DURATION from its renewal, and counts once", () =>
    Effect.gen(function* () {
      const leases = yield* LeaseStore
      const [a] = endpoints(1)
      const first = leases.acquire(a!)
      const other = leases.acquire(a!)
      yield* TestClock.adjust("20 seconds")
      const renewed = leases.renew(first)
      expect(renewed.id).toBe(first.id)
      yield* TestClock.adjust("10 seconds")
      // The other lease expired at 30 s; the renewed one is due at 50 s.
      expect(a!.active).toBe(1)
      yield* TestClock.adjust("20 seconds")
      expect(a!.active).toBe(0)
      // Renewing a lease that expired takes it anew; the totals still add up.
      const again = leases.renew(renewed)
      leases.release(again)
      leases.release(other)
      expect(leases.totals()).toEqual({ acquired: 3, released: 1, expired: 2, active: 0 })
      expect(a!.active).toBe(0)
    }).pipe(Effect.provide(storeLayer({ LEASE_DURATION: "30", LEASE_CLEANUP_INTERVAL: "1" }))),
  )

  it.effect("removes expired leases on the LEASE_CLEANUP_INTERVAL cadence", () =>
    Effect.gen(function* () {
      const leases = yield* LeaseStore
      const [a] = endpoints(1)
      yield* TestClock.adjust("500 millis")
      leases.acquire(a!)
      // Due at 2.5 s; the cleanup fiber runs at 0, 5, 10 s.
      yield* TestClock.adjust("4499 millis")
      expect(a!.active).toBe(1)
      yield* TestClock.adjust("1 millis")
      expect(a!.active).toBe(0)
    }).pipe(Effect.provide(storeLayer({ LEASE_DURATION: "2", LEASE_CLEANUP_INTERVAL: "5" }))),
  )

  it.effect("stops its cleanup fiber when the layer's scope closes", () =>
    Effect.gen(function* () {
      const leases = yield* Effect.scoped(Layer.build(storeLayer({ LEASE_DURATION: "1" }))).pipe(
        Effect.map(Context.get(LeaseStore)),
      )
      const [a] = endpoints(1)
      leases.acquire(a!)
      yield* TestClock.adjust("10 seconds")
      expect(a!.active).toBe(1)
    }),
  )

  const operation = fc.oneof(
    fc.record({ kind: fc.constant("acquire" as const), replica: fc.integer({ min: 0, max: 3 }) }),
    fc.record({ kind: fc.constant("release" as const), index: fc.nat() }),
    fc.record({ kind: fc.constant("advance" as const), millis: fc.integer({ min: 0, max: 4000 }) }),
    fc.record({ kind: fc.constant("expire" as const) }),
  )

  it.effect.prop(
    "acquired = released + expired + active, and no count is ever negative",
    [fc.array(operation, { maxLength: 200 })],
    ([operations]) =>
      Effect.gen(function* () {
        const leases = yield* make(3000)
        const replicas = endpoints(4)
        const taken: Array<Lease> = []
        for (const op of operations) {
          if (op.kind === "acquire") taken.push(leases.acquire(replicas[op.replica]!))
          else if (op.kind === "release" && taken.length > 0) leases.release(taken[op.index % taken.length]!)
          else if (op.kind === "advance") yield* TestClock.adjust(op.millis)
          else if (op.kind === "expire") yield* leases.expireDue
          const totals = leases.totals()
          const perReplica = replicas.map((replica) => replica.active)
          expect(totals.acquired).toBe(totals.released + totals.expired + totals.active)
          expect(perReplica.every((count) => count >= 0)).toBe(true)
          expect(perReplica.reduce((sum, count) => sum + count, 0)).toBe(totals.active)
        }
      }),
  )
})
