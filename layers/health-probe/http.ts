/**
 * HealthProbe over HTTP: every `HEALTH_CHECK_INTERVAL` each known endpoint gets `GET HEALTH_CHECK_PATH`
 * with a timeout; `UNHEALTHY_THRESHOLD` failures in a row take it out, `HEALTHY_THRESHOLD` successes
 * bring it back. Connection errors seen by the proxy count as failures too, so a dead replica leaves
 * the pool without waiting for the next probe round.
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { Duration, Effect, FiberSet, Layer, Schedule } from "effect"
import { LbConfig } from "../../src/Config.ts"
import { describeError } from "../../src/describeError.ts"
import type { Endpoint } from "../../src/Endpoint.ts"
import { HealthProbe } from "../../src/HealthProbe.ts"
import { ReplicaPool } from "../../src/ReplicaPool.ts"

export const layer = Layer.scoped(
  HealthProbe,
  Effect.gen(function* () {
    const config = yield* LbConfig
    const pool = yield* ReplicaPool
    const client = (yield* HttpClient.HttpClient).pipe(HttpClient.filterStatusOk)
    const clock = yield* Effect.clock
    // Passive reports arrive from the data plane, outside any fiber: they log through this layer's runtime.
    const run = yield* FiberSet.makeRuntime<never>()

    const transition = (endpoint: Endpoint, healthy: boolean) => {
      const { health } = endpoint
      health.healthy = healthy
      health.changedAt = clock.unsafeCurrentTimeMillis()
      pool.invalidate()
      const log = healthy
        ? Effect.logInfo("replica is healthy again")
        : Effect.logWarning("replica is unhealthy")
      run(
        log.pipe(
          Effect.annotateLogs({ replica: endpoint.id, reason: health.lastError ?? "probe succeeded" }),
        ),
      )
    }

    const recordFailure = (endpoint: Endpoint, reason: string) => {
      const { health } = endpoint
      health.consecutiveSuccesses = 0
      health.consecutiveFailures++
      health.lastError = reason
      if (health.healthy && health.consecutiveFailures >= config.unhealthyThreshold) {
        transition(endpoint, false)
      }
    }

    const recordSuccess = (endpoint: Endpoint) => {
      const { health } = endpoint
      health.consecutiveFailures = 0
      health.consecutiveSuccesses++
      if (!health.healthy && health.consecutiveSuccesses >= config.healthyThreshold) {
        health.lastError = undefined
        transition(endpoint, true)
      }
    }

    const probe = (endpoint: Endpoint) =>
      client.execute(HttpClientRequest.get(`${endpoint.replica.origin}${config.healthCheckPath}`)).pipe(
        Effect.scoped,
        Effect.timeoutFail({
          duration: Duration.millis(config.healthCheckTimeoutMs),
          onTimeout: () => `no answer within ${config.healthCheckTimeoutMs} ms`,
        }),
        Effect.match({
          onFailure: (error) => recordFailure(endpoint, describeError(error)),
          onSuccess: () => recordSuccess(endpoint),
        }),
      )

    yield* Effect.suspend(() =>
      Effect.forEach(pool.endpoints(), probe, { concurrency: "unbounded", discard: true }),
    ).pipe(Effect.repeat(Schedule.spaced(Duration.millis(config.healthCheckIntervalMs))), Effect.forkScoped)

    return { reportFailure: recordFailure }
  }),
)
