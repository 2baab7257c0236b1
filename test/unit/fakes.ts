/**
 * Fake layers and fixtures for unit tests: configuration from a map, endpoints built by hand, and
 * discovery, metrics, a replica pool and HTTP under test control.
 */
import { HttpClient, HttpClientError, HttpClientResponse } from "@effect/platform"
import { ConfigProvider, Effect, Layer } from "effect"
import { LbConfig } from "../../src/Config.ts"
import { Discovery } from "../../src/Discovery.ts"
import type { Replica, ReplicaId } from "../../src/domain/Replica.ts"
import { Endpoint } from "../../src/Endpoint.ts"
import { MetricsSource, type ReplicaMetrics } from "../../src/MetricsSource.ts"
import { ReplicaPool } from "../../src/ReplicaPool.ts"
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
