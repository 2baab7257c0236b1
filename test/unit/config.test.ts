/** Configuration: the PRD's defaults, and one clear error naming the variable for every bad value. */
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Either } from "effect"
import { LbConfig } from "../../src/Config.ts"

const load = (env: Record<string, string>) =>
  Effect.gen(function* () {
    return yield* LbConfig
  }).pipe(
    Effect.provide(LbConfig.layer),
    Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))),
    Effect.either,
  )

describe("LbConfig", () => {
  it.effect("defaults to the PRD's values", () =>
    Effect.gen(function* () {
      const config = Either.getOrThrow(yield* load({}))
      expect(config).toMatchObject({
        listenPort: 8081,
        algorithm: "lease",
        targetService: "web-stress",
        workerNodes: ["worker-1", "worker-2", "worker-3"],
        metricsPort: 8082,
        leaseDurationMs: 30_000,
        leaseCleanupIntervalMs: 1000,
        cacheTtlMs: 1000,
        metricsMaxAgeMs: 3000,
        cpuWeight: 0.5,
        memoryWeight: 0.3,
        networkWeight: 0.2,
        leaseCountWeight: 10,
        healthCheckIntervalMs: 5000,
        fallbackEnabled: true,
        debugRouting: false,
        logEveryNRequests: 100,
        replicas: [],
        metricsPath: "/metrics",
        networkCapacityMbps: 100,
        network: "swarmguard-net",
        targetPort: 8080,
        adaptiveDecayMs: 5000,
        adaptiveHotQuantile: 0.75,
        adaptiveCpuWeight: 0.5,
        upstreamResponseTimeoutMs: 60_000,
        upstreamIdleTimeoutMs: 60_000,
        upstreamKeepAliveTimeoutMs: 4000,
        clientHeaderTimeoutMs: 10_000,
        clientRequestTimeoutMs: 300_000,
        clientKeepAliveTimeoutMs: 65_000,
        clientMaxHeaderBytes: 16_384,
        maxRequestBodyBytes: 0,
        retryBudget: 0.1,
        retryBurst: 20,
        outlierConsecutiveFailures: 5,
        outlier5xx: true,
        outlierEjectionMs: 10_000,
        outlierMaxEjectionMs: 300_000,
        outlierMaxEjectedPercent: 50,
        slowStartMs: 0,
        drainTimeoutMs: 25_000,
      })
    }),
  )

  it.effect("METRICS_MAX_AGE follows CACHE_TTL unless set", () =>
    Effect.gen(function* () {
      expect(Either.getOrThrow(yield* load({ CACHE_TTL: "0.5" })).metricsMaxAgeMs).toBe(1500)
      expect(
        Either.getOrThrow(yield* load({ CACHE_TTL: "0.5", METRICS_MAX_AGE: "10" })).metricsMaxAgeMs,
      ).toBe(10_000)
    }),
  )

  it.effect("reads lists and booleans", () =>
    Effect.gen(function* () {
      const config = Either.getOrThrow(
        yield* load({
          REPLICAS: "http://127.0.0.2:9001/, http://127.0.0.3:9002,",
          FALLBACK_ENABLED: "FALSE",
          DEBUG_ROUTING: "1",
        }),
      )
      expect(config.replicas).toEqual(["http://127.0.0.2:9001", "http://127.0.0.3:9002"])
      expect(config.fallbackEnabled).toBe(false)
      expect(config.debugRouting).toBe(true)
    }),
  )

  const invalid: Array<[Record<string, string>, string]> = [
    [
      { LB_ALGORITHM: "fastest" },
      'LB_ALGORITHM="fastest": expected one of lease, metrics, hybrid, round-robin, adaptive',
    ],
    [{ LB_PORT: "-1" }, 'LB_PORT="-1": expected a TCP port, an integer from 0 to 65535'],
    [{ CPU_WEIGHT: "abc" }, 'CPU_WEIGHT="abc": expected a number of 0 or more'],
    [{ LEASE_DURATION: "0" }, 'LEASE_DURATION="0": expected a positive number of seconds'],
    [
      { REPLICAS: "127.0.0.1:9001" },
      'REPLICAS="127.0.0.1:9001": expected comma-separated http://host:port URLs',
    ],
    [{ ADAPTIVE_HOT_QUANTILE: "1.5" }, 'ADAPTIVE_HOT_QUANTILE="1.5": expected a number from 0 to 1'],
    [{ ADAPTIVE_DECAY: "0" }, 'ADAPTIVE_DECAY="0": expected a positive number of seconds'],
    [{ ADAPTIVE_CPU_WEIGHT: "-1" }, 'ADAPTIVE_CPU_WEIGHT="-1": expected a number of 0 or more'],
    [{ FALLBACK_ENABLED: "maybe" }, 'FALLBACK_ENABLED="maybe": expected true or false'],
    [{ LOG_EVERY_N_REQUESTS: "1.5" }, 'LOG_EVERY_N_REQUESTS="1.5": expected an integer of 0 or more'],
    [{ LB_METRICS_PATH: "metrics" }, 'LB_METRICS_PATH="metrics": expected an absolute URL path'],
    [{ WORKER_NODES: "worker 1" }, 'WORKER_NODES="worker 1": expected comma-separated host names'],
    [{ RETRY_BUDGET: "2" }, 'RETRY_BUDGET="2": expected a number from 0 to 1'],
    [
      { OUTLIER_MAX_EJECTED_PERCENT: "150" },
      'OUTLIER_MAX_EJECTED_PERCENT="150": expected a number from 0 to 100',
    ],
    [{ SLOW_START: "-1" }, 'SLOW_START="-1": expected a number of seconds, 0 or more'],
    [{ OUTLIER_5XX: "sometimes" }, 'OUTLIER_5XX="sometimes": expected true or false'],
    [{ MAX_REQUEST_BODY: "1e3.5" }, 'MAX_REQUEST_BODY="1e3.5": expected an integer of 0 or more'],
    [{ CLIENT_MAX_HEADER_SIZE: "0" }, 'CLIENT_MAX_HEADER_SIZE="0": expected a positive integer'],
    [{ DRAIN_TIMEOUT: "0" }, 'DRAIN_TIMEOUT="0": expected a positive number of seconds'],
  ]

  for (const [env, message] of invalid) {
    it.effect(`rejects ${Object.entries(env)[0]!.join("=")} naming the variable and what it expects`, () =>
      Effect.gen(function* () {
        const result = yield* load(env)
        expect(Either.isLeft(result)).toBe(true)
        const error = Either.getLeft(result).pipe((option) =>
          option._tag === "Some" ? option.value : undefined,
        )!
        expect(error._tag).toBe("ConfigInvalid")
        expect(error.message).toContain(message)
        expect(error.message).not.toContain("\n")
      }),
    )
  }
})
