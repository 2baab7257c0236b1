/** In-memory LeaseStore; an expiry fiber runs every `LEASE_CLEANUP_INTERVAL` for the layer's lifetime. */
import { Duration, Effect, Layer, Schedule } from "effect"
import { LbConfig } from "../../src/Config.ts"
import type { Endpoint } from "../../src/Endpoint.ts"
import { type Lease, LeaseStore, type LeaseStoreShape } from "../../src/LeaseStore.ts"

export const make = (leaseDurationMs: number): Effect.Effect<LeaseStoreShape> =>
  Effect.gen(function* () {
    // The data plane acquires synchronously, so it reads the clock service directly; under TestClock
    // this is the test's time.
    const clock = yield* Effect.clock
    // Every lease lasts the same time, so the map (insertion-ordered, a renewed lease re-inserted) is
    // also ordered by expiry: expiring stops at the first lease still due later.
    const live = new Map<number, Lease>()
    let nextId = 0
    let acquired = 0
    let released = 0
    let expired = 0

    const add = (lease: Lease): Lease => {
      live.set(lease.id, lease)
      return lease
    }

    const acquire = (endpoint: Endpoint): Lease => {
      endpoint.active++
      acquired++
      return add({ id: nextId++, endpoint, expiresAt: clock.unsafeCurrentTimeMillis() + leaseDurationMs })
    }

    const renew = (lease: Lease): Lease => {
      if (!live.delete(lease.id)) return acquire(lease.endpoint)
      return add({ ...lease, expiresAt: clock.unsafeCurrentTimeMillis() + leaseDurationMs })
    }

    const release = (lease: Lease): void => {
      if (!live.delete(lease.id)) return
      lease.endpoint.active--
      released++
    }

    const expireDue = Effect.sync(() => {
      const now = clock.unsafeCurrentTimeMillis()
      let count = 0
      for (const lease of live.values()) {
        if (lease.expiresAt > now) break
        live.delete(lease.id)
        lease.endpoint.active--
        count++
      }
      expired += count
      return count
    })

    return {
      acquire,
      renew,
      release,
      totals: () => ({ acquired, released, expired, active: live.size }),
      expireDue,
    }
  })

export const layer = Layer.scoped(
  LeaseStore,
  Effect.gen(function* () {
    const config = yield* LbConfig
    const store = yield* make(config.leaseDurationMs)
    yield* store.expireDue.pipe(
      Effect.tap((count) =>
        count > 0
          ? Effect.logWarning("leases expired without release").pipe(Effect.annotateLogs({ count }))
          : Effect.void,
      ),
      Effect.repeat(Schedule.spaced(Duration.millis(config.leaseCleanupIntervalMs))),
      Effect.forkScoped,
    )
    return store
  }),
)
