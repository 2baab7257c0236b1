/**
 * Fake layers and fixtures for unit tests: configuration from a map, endpoints built by hand, and
 * discovery, metrics, a replica pool and HTTP under test control.
 */
import { HttpClient, HttpClientError, HttpClientResponse } from "@effect/platform"
import { ConfigProvider, Duration, Effect, FiberId, FiberSet, Layer } from "effect"
import { affinityLayer } from "../../layers/affinity/registry.ts"
import { layer as memoryLeaseLayer } from "../../layers/lease-store/memory.ts"
import { layer as consecutiveOutliersLayer } from "../../layers/outlier-detector/consecutive.ts"
import { selectorLayers } from "../../layers/selector/registry.ts"
import { LbConfig } from "../../src/Config.ts"
import { Discovery } from "../../src/Discovery.ts"
import type { Algorithm } from "../../src/domain/Algorithm.ts"
import type { Replica, ReplicaId } from "../../src/domain/Replica.ts"
import { Endpoint } from "../../src/Endpoint.ts"
import { HealthProbe } from "../../src/HealthProbe.ts"
import type { QueueTimer } from "../../src/limits/request-queue.ts"
import { MetricsSource, type ReplicaMetrics } from "../../src/MetricsSource.ts"
import { ReplicaPool } from "../../src/ReplicaPool.ts"
import { Router } from "../../src/Router.ts"
import { RoutingStats } from "../../src/RoutingStats.ts"
import type { Choice } from "../../src/Selector.ts"

/** LbConfig decoded from `env` alone (the process environment is not read). */
export const configLayer = (env: Record<string, string> = {}) =>
  LbConfig.layer.pipe(
    Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))),
    Layer.orDie,
  )

export const replica = (n: number): Replica => ({
  id: `replica-${n}`,
  name: `web-stress.${n}`,
  origin: `http://127.0.0.${n + 1}:8080`,
  node: undefined,
})

/** `replica(n)` with its own cap on requests in flight. */
export const capped = (n: number, maxRequests: number): Replica => ({ ...replica(n), maxRequests })

/**
 * The endpoint of `replica(n)`, as one of a pool's first replicas (no slow start), with `weight` as
 * its effective weight too (the pool would set that; selector tests have no pool).
 */
export const endpoint = (n: number, weight = 1): Endpoint => {
  const made = new Endpoint(replica(n), Number.NEGATIVE_INFINITY, weight)
  made.effectiveWeight = weight
  return made
}

/** Fresh endpoints of replicas 1 to `count`, with the given weights (1 where none is given). */
export const endpoints = (count: number, weights: ReadonlyArray<number> = []): Array<Endpoint> =>
  Array.from({ length: count }, (_, i) => endpoint(i + 1, weights[i] ?? 1))

/** What a selector is given to choose among, `uniform` as the pool would say it. */
export const choiceOf = (candidates: ReadonlyArray<Endpoint>): Choice => ({
  endpoints: candidates,
  uniform: candidates.every((candidate) => candidate.effectiveWeight === candidates[0]!.effectiveWeight),
})

/** A Discovery whose replica set the test replaces with `set`. */
export const fakeDiscovery = (initial: ReadonlyArray<Replica> = []) => {
  let current = initial
  let version = 0
  return {
    set: (replicas: ReadonlyArray<Replica>) => {
      current = replicas
      version++
    },
    layer: Layer.succeed(Discovery, { current: () => current, version: () => version }),
  }
}

/** A MetricsSource whose samples the test sets; every `set` or `clear` is a new version. */
export const fakeMetrics = () => {
  const samples = new Map<ReplicaId, ReplicaMetrics>()
  let version = 0
  return {
    set: (replicaId: ReplicaId, metrics: ReplicaMetrics) => {
      samples.set(replicaId, metrics)
      version++
    },
    clear: () => {
      samples.clear()
      version++
    },
    layer: Layer.succeed(MetricsSource, {
      get: (replicaId) => samples.get(replicaId),
      version: () => version,
      pollFailures: () => ({}),
    }),
  }
}

export const sample = (cpuPercent: number, sampledAt: number): ReplicaMetrics => ({
  cpuPercent,
  memoryPercent: 0,
  networkMbps: 0,
  sampledAt,
})

/** A ReplicaPool over fixed endpoints, every one a candidate: for services that only read the pool. */
export const fixedPool = (known: ReadonlyArray<Endpoint> = []) =>
  Layer.succeed(ReplicaPool, {
    endpoints: () => known,
    candidates: () => ({
      ...choiceOf(known),
      panic: false,
      capped: known.some((endpoint) => endpoint.maxRequests > 0),
    }),
    invalidate: () => {},
  })

/** What a fake endpoint does: answer with a status and JSON body, refuse the connection, or hang. */
export type FakeAnswer = { readonly status: number; readonly body?: unknown } | "refuse" | "hang"

/** An HttpClient answering from `routes` (URL → answer); unknown URLs are refused like a closed port. */
export const fakeHttp = () => {
  const routes = new Map<string, FakeAnswer>()
  const requested: Array<string> = []
  const client = HttpClient.make((request) => {
    requested.push(request.url)
    const answer = routes.get(request.url) ?? "refuse"
    if (answer === "hang") return Effect.never
    if (answer === "refuse") {
      return Effect.fail(
        new HttpClientError.RequestError({ request, reason: "Transport", description: "ECONNREFUSED" }),
      )
    }
    const body = typeof answer.body === "string" ? answer.body : JSON.stringify(answer.body ?? {})
    return Effect.succeed(HttpClientResponse.fromWeb(request, new Response(body, { status: answer.status })))
  })
  return { routes, requested, layer: Layer.succeed(HttpClient.HttpClient, client) }
}

/**
 * A request queue's timer on the clock service, as the Router's: each timer a fiber of the enclosing
 * scope, so TestClock moves it and the scope's end stops it.
 */
export const clockTimer = Effect.gen(function* () {
  const run = yield* FiberSet.makeRuntime<never>()
  const clock = yield* Effect.clock
  const timer: QueueTimer = {
    start: (ms, expire) => {
      const fiber = run(Effect.sleep(Duration.millis(ms)).pipe(Effect.zipRight(Effect.sync(expire))))
      return () => fiber.unsafeInterruptAsFork(FiberId.none)
    },
    now: () => clock.unsafeCurrentTimeMillis(),
  }
  return timer
})

/**
 * A Router over real leases, stats, outlier detection, affinity and pool on `replicas`, with a health
 * probe that ignores what it is told.
 */
export const routerOver = (
  replicas: ReadonlyArray<Replica>,
  env: Record<string, string> = {},
  algorithm: Algorithm = "round-robin",
) =>
  Router.layer.pipe(
    Layer.provideMerge(
      Layer.mergeAll(
        selectorLayers[algorithm],
        memoryLeaseLayer,
        RoutingStats.layer,
        consecutiveOutliersLayer,
        Layer.succeed(HealthProbe, { reportFailure: () => {} }),
        affinityLayer,
      ),
    ),
    Layer.provideMerge(ReplicaPool.layer),
    Layer.provide(Layer.merge(fakeDiscovery(replicas).layer, fakeMetrics().layer)),
    Layer.provide(configLayer({ LOG_EVERY_N_REQUESTS: "0", ...env })),
  )
