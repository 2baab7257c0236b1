/**
 * OutlierDetector counting failures in a row. `OUTLIER_CONSECUTIVE_FAILURES` of them eject a replica
 * for `OUTLIER_EJECTION_TIME × 2^(n-1)` (n counting its recent ejections, at most
 * `OUTLIER_MAX_EJECTION_TIME`); every `OUTLIER_EJECTION_TIME` it then stays in takes one off n, as
 * Envoy decrements its multiplier. At most `OUTLIER_MAX_EJECTED_PERCENT` of the known replicas (and
 * always one) are out at once, so a fault shared by every replica cannot empty the pool.
 */
import { Duration, Effect, FiberSet, Layer, Schedule } from "effect"
import { LbConfig } from "../../src/Config.ts"
import { Discovery } from "../../src/Discovery.ts"
import type { ReplicaId } from "../../src/domain/Replica.ts"
import {
  type EjectionState,
  type ExchangeFailure,
  OutlierDetector,
  type OutlierDetectorShape,
} from "../../src/OutlierDetector.ts"

interface MutableState {
  consecutiveFailures: number
  ejections: number
  ejectedUntil: number | undefined
  /** When it was last readmitted (epoch ms), for the decay of `ejections` and for slow start. */
  readmittedAt: number | undefined
}

export const layer = Layer.scoped(
  OutlierDetector,
  Effect.gen(function* () {
    const config = yield* LbConfig
    const discovery = yield* Discovery
    const clock = yield* Effect.clock
    // Readmissions are timers started from the data plane: fibers of this layer's scope.
    const run = yield* FiberSet.makeRuntime<never>()
    const threshold = config.outlierConsecutiveFailures
    const baseMs = config.outlierEjectionMs
    const maxDoublings = Math.max(0, Math.ceil(Math.log2(config.outlierMaxEjectionMs / baseMs)))
    // Only replicas that failed get a state, so the success path is one failed lookup.
    const states = new Map<ReplicaId, MutableState>()
    let ejectedNow = 0
    let total = 0
    let version = 0

    const readmit = (replicaId: ReplicaId, state: MutableState) =>
      Effect.sync(() => {
        // A replica that left the service while ejected gave its place back already.
        if (state.ejectedUntil === undefined) return
        state.ejectedUntil = undefined
        state.consecutiveFailures = 0
        state.readmittedAt = clock.unsafeCurrentTimeMillis()
        ejectedNow--
        version++
      }).pipe(
        Effect.zipRight(Effect.logInfo("replica readmitted after ejection")),
        Effect.annotateLogs({ replica: replicaId }),
      )

    const mayEject = () => {
      const allowed = Math.max(
        1,
        Math.floor((discovery.current().length * config.outlierMaxEjectedPercent) / 100),
      )
      return ejectedNow < allowed
    }

    const eject = (replicaId: ReplicaId, state: MutableState, failure: ExchangeFailure) => {
      const now = clock.unsafeCurrentTimeMillis()
      const stayedIn = Math.floor((now - (state.readmittedAt ?? now)) / baseMs)
      // Past the doubling that reaches the longest ejection, more would only make it slower to forgive.
      state.ejections = Math.min(Math.max(0, state.ejections - stayedIn) + 1, maxDoublings + 1)
      const durationMs = Math.min(baseMs * 2 ** (state.ejections - 1), config.outlierMaxEjectionMs)
      state.ejectedUntil = now + durationMs
      ejectedNow++
      total++
      version++
      run(
        Effect.logWarning("replica ejected").pipe(
          Effect.annotateLogs({
            replica: replicaId,
            failure,
            consecutive_failures: state.consecutiveFailures,
            ejection_seconds: durationMs / 1000,
          }),
          Effect.zipRight(Effect.sleep(Duration.millis(durationMs))),
          Effect.zipRight(readmit(replicaId, state)),
        ),
      )
    }

    const reportFailure = (replicaId: ReplicaId, failure: ExchangeFailure) => {
      if (threshold === 0 || (failure === "5xx" && !config.outlier5xx)) return
      let state = states.get(replicaId)
      if (state === undefined) {
        state = { consecutiveFailures: 0, ejections: 0, ejectedUntil: undefined, readmittedAt: undefined }
        states.set(replicaId, state)
      }
      state.consecutiveFailures++
      if (state.ejectedUntil === undefined && state.consecutiveFailures >= threshold && mayEject()) {
        eject(replicaId, state, failure)
      }
    }

    // Replicas that left the service take their state with them, and an ejected one its place among
    // the ejected, so the replicas that replaced it can still be ejected.
    const forgetDeparted = Effect.sync(() => {
      const known = new Set(discovery.current().map((replica) => replica.id))
      for (const [replicaId, state] of states) {
        if (known.has(replicaId)) continue
        if (state.ejectedUntil !== undefined) {
          state.ejectedUntil = undefined
          ejectedNow--
          version++
        }
        states.delete(replicaId)
      }
    })
    yield* forgetDeparted.pipe(Effect.repeat(Schedule.spaced(Duration.seconds(30))), Effect.forkScoped)

    const service: OutlierDetectorShape = {
      reportSuccess: (replicaId) => {
        const state = states.get(replicaId)
        if (state !== undefined) state.consecutiveFailures = 0
      },
      reportFailure,
      isEjected: (replicaId) => states.get(replicaId)?.ejectedUntil !== undefined,
      state: (replicaId): EjectionState | undefined => {
        const state = states.get(replicaId)
        return (
          state && {
            ejected: state.ejectedUntil !== undefined,
            consecutiveFailures: state.consecutiveFailures,
            ejections: state.ejections,
            ejectedUntil: state.ejectedUntil,
            readmittedAt: state.readmittedAt,
          }
        )
      },
      totalEjections: () => total,
      version: () => version,
    }
    return service
  }),
)
