/**
 * OutlierDetector counting failures in a row. `OUTLIER_CONSECUTIVE_FAILURES` of them eject an endpoint
 * for `OUTLIER_EJECTION_TIME × 2^(n-1)` (n counting its recent ejections, at most
 * `OUTLIER_MAX_EJECTION_TIME`); every `OUTLIER_EJECTION_TIME` it then stays in takes one off n, as
 * Envoy decrements its multiplier. At most `OUTLIER_MAX_EJECTED_PERCENT` of the known endpoints (and
 * always one) are out at once, so a fault shared by every replica cannot empty the pool. A retired
 * endpoint is no longer known, so it gives its place among the ejected back at once.
 */
import { Duration, Effect, FiberSet, Layer } from "effect"
import { LbConfig } from "../../src/Config.ts"
import type { Endpoint } from "../../src/Endpoint.ts"
import { type ExchangeFailure, OutlierDetector } from "../../src/OutlierDetector.ts"
import { ReplicaPool } from "../../src/ReplicaPool.ts"

export const layer = Layer.scoped(
  OutlierDetector,
  Effect.gen(function* () {
    const config = yield* LbConfig
    const pool = yield* ReplicaPool
    const clock = yield* Effect.clock
    // Readmissions are timers started from the data plane: fibers of this layer's scope.
    const run = yield* FiberSet.makeRuntime<never>()
    const threshold = config.outlierConsecutiveFailures
    const baseMs = config.outlierEjectionMs
    const maxDoublings = Math.max(0, Math.ceil(Math.log2(config.outlierMaxEjectionMs / baseMs)))
    let total = 0

    const readmit = (endpoint: Endpoint) =>
      Effect.suspend(() => {
        // A replica that left the service while ejected is gone with its state.
        if (endpoint.retired) return Effect.void
        const { ejection } = endpoint
        ejection.ejectedUntil = undefined
        ejection.consecutiveFailures = 0
        ejection.readmittedAt = clock.unsafeCurrentTimeMillis()
        pool.invalidate()
        return Effect.logInfo("replica readmitted after ejection").pipe(
          Effect.annotateLogs({ replica: endpoint.id }),
        )
      })

    const mayEject = () => {
      const known = pool.endpoints()
      const allowed = Math.max(1, Math.floor((known.length * config.outlierMaxEjectedPercent) / 100))
      let ejected = 0
      for (const endpoint of known) if (endpoint.ejected) ejected++
      return ejected < allowed
    }

    const eject = (endpoint: Endpoint, failure: ExchangeFailure) => {
      const { ejection } = endpoint
      const now = clock.unsafeCurrentTimeMillis()
      const stayedIn = Math.floor((now - (ejection.readmittedAt ?? now)) / baseMs)
      // Past the doubling that reaches the longest ejection, more would only make it slower to forgive.
      ejection.ejections = Math.min(Math.max(0, ejection.ejections - stayedIn) + 1, maxDoublings + 1)
      const durationMs = Math.min(baseMs * 2 ** (ejection.ejections - 1), config.outlierMaxEjectionMs)
      ejection.ejectedUntil = now + durationMs
      total++
      pool.invalidate()
      run(
        Effect.logWarning("replica ejected").pipe(
          Effect.annotateLogs({
            replica: endpoint.id,
            failure,
            consecutive_failures: ejection.consecutiveFailures,
            ejection_seconds: durationMs / 1000,
          }),
          Effect.zipRight(Effect.sleep(Duration.millis(durationMs))),
          Effect.zipRight(readmit(endpoint)),
        ),
      )
    }

    return {
      reportSuccess: (endpoint) => {
        endpoint.ejection.consecutiveFailures = 0
      },
      reportFailure: (endpoint, failure) => {
        if (threshold === 0 || (failure === "5xx" && !config.outlier5xx)) return
        const { ejection } = endpoint
        ejection.consecutiveFailures++
        if (
          !endpoint.ejected &&
          !endpoint.retired &&
          ejection.consecutiveFailures >= threshold &&
          mayEject()
        ) {
          eject(endpoint, failure)
        }
      },
      totalEjections: () => total,
    }
  }),
)
