/**
 * Samples the StatsSource every `POLL_INTERVAL` in the background and keeps the latest sample, so the
 * API never calls the source per request. While the source fails, the last sample is kept and
 * marked stale; sampling resumes by itself when the source is back.
 */
import { Context, Duration, Effect, Layer, Schedule } from "effect"
import type { ContainerMetrics } from "../src/domain/AgentReport.ts"
import { AgentConfig } from "./Config.ts"
import { StatsSource } from "./StatsSource.ts"

export interface LatestSample {
  readonly containers: ReadonlyArray<ContainerMetrics>
  /** When the sample was completed (epoch ms). */
  readonly completedAt: number
  readonly durationMs: number
  readonly stale: boolean
  readonly lastError: string | undefined
}

export interface SamplerShape {
  readonly nodeName: string
  /** Undefined until the first sample completes. */
  readonly latest: () => LatestSample | undefined
  readonly failures: () => number
}

export class Sampler extends Context.Tag("swarmguard/agent/Sampler")<Sampler, SamplerShape>() {
  static readonly layer = Layer.scoped(
    Sampler,
    Effect.gen(function* () {
      const config = yield* AgentConfig
      const source = yield* StatsSource
      const clock = yield* Effect.clock
      let latest: LatestSample | undefined
      let failures = 0

      const sampleOnce = source.sample.pipe(
        Effect.timed,
        Effect.matchEffect({
          onSuccess: ([duration, containers]) =>
            Effect.gen(function* () {
              if (latest?.stale) yield* Effect.logInfo("source readable again")
              latest = {
                containers,
                completedAt: clock.unsafeCurrentTimeMillis(),
                durationMs: Duration.toMillis(duration),
                stale: false,
                lastError: undefined,
              }
            }),
          onFailure: (error) =>
            Effect.gen(function* () {
              failures++
              if (latest !== undefined && !latest.stale) {
                yield* Effect.logWarning("cannot sample; serving the last sample as stale").pipe(
                  Effect.annotateLogs({ reason: error.reason }),
                )
              }
              if (latest !== undefined) latest = { ...latest, stale: true, lastError: error.reason }
            }),
        }),
      )

      yield* sampleOnce.pipe(
        Effect.repeat(Schedule.fixed(Duration.millis(config.pollIntervalMs))),
        Effect.forkScoped,
      )
      const current = source.current
      return {
        nodeName: config.nodeName ?? source.nodeName,
        // While the source is readable, readings that arrived since the last sample are served too.
        latest: () =>
          latest === undefined || latest.stale || current === undefined
            ? latest
            : { ...latest, containers: current() },
        failures: () => failures,
      }
    }),
  )
}
