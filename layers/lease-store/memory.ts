/** In-memory LeaseStore; an expiry fiber runs every `LEASE_CLEANUP_INTERVAL` for the layer's lifetime. */
import { Duration, Effect, Layer, Schedule } from "effect"
import { LbConfig } from "../../src/Config.ts"
import type { ReplicaId } from "../../src/domain/Replica.ts"
import { type Lease, LeaseStore, type LeaseStoreShape } from "../../src/LeaseStore.ts"

export const make = (leaseDurationMs: number): Effect.Effect<LeaseStoreShape> =>
  Effect.gen(function* () {
    // The data plane acquires synchronously, so it reads the clock service directly; under TestClock
    // this is the test's time.
    const clock = yield* Effect.clock
    // Every lease lasts the same time, so each replica's map (insertion-ordered) is also ordered by
    // expiry: expiring stops at the first lease still due later.
    const byReplica = new Map<ReplicaId, Map<number, Lease>>()
    let nextId = 0
    let acquired = 0
    let released = 0
    let expired = 0
    let active = 0

    const acquire = (replicaId: ReplicaId): Lease => {
      const lease: Lease = {
        id: nextId++,
        replicaId,
        expiresAt: clock.unsafeCurrentTimeMillis() + leaseDurationMs,
      }
      let leases = byReplica.get(replicaId)
      if (leases === undefined) {
        leases = new Map()
        byReplica.set(replicaId, leases)
      }
      leases.set(lease.id, lease)
      acquired++
      active++
      return lease
    }

    const renew = (lease: Lease): Lease => {
      const leases = byReplica.get(lease.replicaId)
      if (leases === undefined || !leases.delete(lease.id)) return acquire(lease.replicaId)
      // Deleted and set again, it moves to the end of its map and keeps the maps ordered by expiry.
      const renewed: Lease = { ...lease, expiresAt: clock.unsafeCurrentTimeMillis() + leaseDurationMs }
      leases.set(renewed.id, renewed)
      return renewed
    }

    const release = (lease: Lease): void => {
      const leases = byReplica.get(lease.replicaId)
      if (leases === undefined || !leases.delete(lease.id)) return
      if (leases.size === 0) byReplica.delete(lease.replicaId)
      released++
      active--
    }

    const expireDue = Effect.sync(() => {
      const now = clock.unsafeCurrentTimeMillis()
      let count = 0
      for (const [replicaId, leases] of byReplica) {
        for (const lease of leases.values()) {
          if (lease.expiresAt > now) break
          leases.delete(lease.id)
          count++
        }
        if (leases.size === 0) byReplica.delete(replicaId)
      }
      expired += count
      active -= count
      return count
    })

    return {
      acquire,
      renew,
      release,
      active: (replicaId) => byReplica.get(replicaId)?.size ?? 0,
      totals: () => ({ acquired, released, expired, active }),
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
