/**
 * HealthProbe over HTTP: every `HEALTH_CHECK_INTERVAL` each known replica gets `GET HEALTH_CHECK_PATH`
 * with a timeout; `UNHEALTHY_THRESHOLD` failures in a row take it out, `HEALTHY_THRESHOLD` successes
 * bring it back. Connection errors seen by the proxy count as failures too, so a dead replica leaves
 * the pool without waiting for the next probe round.
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { Duration, Effect, Layer, Runtime, Schedule } from "effect"
import { LbConfig } from "../../src/Config.ts"
import { Discovery } from "../../src/Discovery.ts"
import { describeError } from "../../src/describeError.ts"
import type { Replica, ReplicaId } from "../../src/domain/Replica.ts"
import { HealthProbe, type HealthProbeShape, type HealthState } from "../../src/HealthProbe.ts"

interface MutableHealth {
  healthy: boolean
  consecutiveSuccesses: number
  consecutiveFailures: number
  lastError: string | undefined
  changedAt: number | undefined
}

export const layer = Layer.scoped(
  HealthProbe,
  Effect.gen(function* () {
    const config = yield* LbConfig
    const discovery = yield* Discovery
    const client = (yield* HttpClient.HttpClient).pipe(HttpClient.filterStatusOk)
    const clock = yield* Effect.clock
    // Passive reports arrive from the data plane, outside any fiber: log through this layer's runtime.
    const runFork = Runtime.runFork(yield* Effect.runtime<never>())
    const states = new Map<ReplicaId, MutableHealth>()
    let version = 0

    const stateOf = (replicaId: ReplicaId): MutableHealth => {
      let state = states.get(replicaId)
      if (state === undefined) {
        state = {
          healthy: true,
          consecutiveSuccesses: 0,
          consecutiveFailures: 0,
          lastError: undefined,
          changedAt: undefined,
        }
        states.set(replicaId, state)
      }
      return state
    }

    const transition = (replica: ReplicaId, state: MutableHealth, healthy: boolean) => {
      state.healthy = healthy
      state.changedAt = clock.unsafeCurrentTimeMillis()
      version++
      const log = healthy
        ? Effect.logInfo("replica is healthy again")
        : Effect.logWarning("replica is unhealthy")
      runFork(log.pipe(Effect.annotateLogs({ replica, reason: state.lastError ?? "probe succeeded" })))
    }

    const recordFailure = (replicaId: ReplicaId, reason: string) => {
      const state = stateOf(replicaId)
      state.consecutiveSuccesses = 0
      state.consecutiveFailures++
      state.lastError = reason
      if (state.healthy && state.consecutiveFailures >= config.unhealthyThreshold) {
        transition(replicaId, state, false)
      }
    }

    const recordSuccess = (replicaId: ReplicaId) => {
      const state = stateOf(replicaId)
      state.consecutiveFailures = 0
      state.consecutiveSuccesses++
      if (!state.healthy && state.consecutiveSuccesses >= config.healthyThreshold) {
        state.lastError = undefined
        transition(replicaId, state, true)
      }
    }

    const probe = (replica: Replica) =>
      client.execute(HttpClientRequest.get(`${replica.origin}${config.healthCheckPath}`)).pipe(
        Effect.scoped,
        Effect.timeoutFail({
          duration: Duration.millis(config.healthCheckTimeoutMs),
          onTimeout: () => `no answer within ${config.healthCheckTimeoutMs} ms`,
        }),
        Effect.match({
          onFailure: (error) => recordFailure(replica.id, describeError(error)),
          onSuccess: () => recordSuccess(replica.id),
        }),
      )

    const probeAll = Effect.suspend(() => {
      const replicas = discovery.current()
      const known = new Set(replicas.map((replica) => replica.id))
      for (const replicaId of states.keys()) if (!known.has(replicaId)) states.delete(replicaId)
      return Effect.forEach(replicas, probe, { concurrency: "unbounded", discard: true })
    })

    yield* probeAll.pipe(
      Effect.repeat(Schedule.spaced(Duration.millis(config.healthCheckIntervalMs))),
      Effect.forkScoped,
    )

    const service: HealthProbeShape = {
      isHealthy: (replicaId) => states.get(replicaId)?.healthy ?? true,
      state: (replicaId): HealthState | undefined => {
        const state = states.get(replicaId)
        return state && { ...state }
      },
      reportFailure: recordFailure,
      version: () => version,
    }
    return service
  }),
)
