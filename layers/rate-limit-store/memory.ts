/**
 * Rate-limit budgets in this process: one theoretical arrival time per key. Keys whose bucket is full
 * again are forgotten by a sweep, so memory follows the clients active within a burst's time.
 */
import { Duration, Effect, Layer, Schedule } from "effect"
import { gcra } from "../../src/limits/gcra.ts"
import {
  RateLimitStore,
  type RateLimitStoreShape,
  type RateLimitStoreStatus,
} from "../../src/RateLimitStore.ts"

const SWEEP_INTERVAL = Duration.seconds(10)

export interface MemoryBuckets {
  readonly take: (key: string, intervalMs: number, burst: number) => ReturnType<typeof gcra>
  /** Forgets every key whose bucket is full by now; returns how many. */
  readonly sweep: () => number
  readonly size: () => number
}

/** Buckets on the given clock (epoch ms): the clock service's, so TestClock drives them in tests. */
export const makeMemoryBuckets = (now: () => number): MemoryBuckets => {
  const tats = new Map<string, number>()
  return {
    take: (key, intervalMs, burst) => {
      const decision = gcra(tats.get(key), now(), intervalMs, burst)
      if (decision.allowed) tats.set(key, decision.tat)
      return decision
    },
    sweep: () => {
      const at = now()
      let forgotten = 0
      for (const [key, tat] of tats) {
        if (tat > at) continue
        tats.delete(key)
        forgotten++
      }
      return forgotten
    },
    size: () => tats.size,
  }
}

/** Sweeps `buckets` for the layer's lifetime. */
export const sweepForever = (buckets: MemoryBuckets) =>
  Effect.sync(buckets.sweep).pipe(Effect.repeat(Schedule.spaced(SWEEP_INTERVAL)), Effect.forkScoped)

const MEMORY_STATUS: RateLimitStoreStatus = {
  backend: "memory",
  degraded: false,
  outages: 0,
  redisErrors: 0,
  localDecisions: 0,
  unavailableDecisions: 0,
}

/** The store over buckets on the given clock, without the sweep (the layer adds it). */
export const makeMemoryStore = (buckets: MemoryBuckets): RateLimitStoreShape => ({
  take: buckets.take,
  status: () => MEMORY_STATUS,
})

export const layer = Layer.scoped(
  RateLimitStore,
  Effect.gen(function* () {
    const clock = yield* Effect.clock
    const buckets = makeMemoryBuckets(() => clock.unsafeCurrentTimeMillis())
    yield* sweepForever(buckets)
    return makeMemoryStore(buckets)
  }),
)
