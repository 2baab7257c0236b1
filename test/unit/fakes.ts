/** Fake layers and fixtures for unit tests: configuration from a map, metrics and HTTP under test control. */
import { HttpClient, HttpClientError, HttpClientResponse } from "@effect/platform"
import { ConfigProvider, Effect, Layer } from "effect"
import { LbConfig } from "../../src/Config.ts"
import type { Replica, ReplicaId } from "../../src/domain/Replica.ts"
import { MetricsSource, type ReplicaMetrics } from "../../src/MetricsSource.ts"
import { OutlierDetector } from "../../src/OutlierDetector.ts"

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

export const replicas = (count: number): Array<Replica> =>
  Array.from({ length: count }, (_, i) => replica(i + 1))

/** An OutlierDetector that never ejects. */
export const noOutliers = Layer.succeed(OutlierDetector, {
  reportSuccess: () => {},
  reportFailure: () => {},
  isEjected: () => false,
  state: () => undefined,
  totalEjections: () => 0,
  version: () => 0,
})

/** A MetricsSource whose samples the test sets directly. */
export const fakeMetrics = () => {
  const samples = new Map<ReplicaId, ReplicaMetrics>()
  return {
    samples,
    layer: Layer.succeed(MetricsSource, {
      get: (replicaId) => samples.get(replicaId),
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
