/**
 * The Router and its Attempts: what each way an exchange can end reports to leases, stats, outliers,
 * health and the selector, when a failure is retried, and the answers the client gets instead.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, TestClock } from "effect"
import { affinityLayer } from "../../layers/affinity/registry.ts"
import { layer as memoryLeaseLayer } from "../../layers/lease-store/memory.ts"
import { layer as consecutiveOutliersLayer } from "../../layers/outlier-detector/consecutive.ts"
import { selectorLayers } from "../../layers/selector/registry.ts"
import { type Attempt, FIRST_FINAL, FIRST_RETRYABLE, type Refusal } from "../../src/Attempt.ts"
import type { Algorithm } from "../../src/domain/Algorithm.ts"
import type { Replica } from "../../src/domain/Replica.ts"
import { type Endpoint, OUTCOMES, type Outcome } from "../../src/Endpoint.ts"
import { HealthProbe } from "../../src/HealthProbe.ts"
import { LeaseStore } from "../../src/LeaseStore.ts"
import { ReplicaPool } from "../../src/ReplicaPool.ts"
import { isAttempt, Router } from "../../src/Router.ts"
import { RoutingStats } from "../../src/RoutingStats.ts"
import { Selector } from "../../src/Selector.ts"
import { configLayer, fakeDiscovery, fakeMetrics, replica } from "./fakes.ts"

interface Options {
  readonly replicas?: ReadonlyArray<Replica>
  readonly algorithm?: Algorithm
  readonly env?: Record<string, string>
}

/**
 * A Router over real leases, stats, outlier detection and pool, with a selector (round-robin unless
 * told) whose `observe` is recorded, and a HealthProbe that records what it is told.
 */
const setup = ({
  replicas = [replica(1), replica(2)],
  algorithm = "round-robin",
  env = {},
}: Options = {}) => {
  const observed: Array<{ readonly endpoint: Endpoint; readonly ok: boolean }> = []
  const healthReports: Array<{ readonly endpoint: Endpoint; readonly reason: string }> = []
  const recordingSelector = Layer.effect(
    Selector,
    Effect.map(Selector, (inner) => ({
      ...inner,
      observe: (endpoint: Endpoint, _durationMs: number, ok: boolean) => {
        observed.push({ endpoint, ok })
      },
    })),
  ).pipe(Layer.provide(selectorLayers[algorithm]))
  const health = Layer.succeed(HealthProbe, {
    reportFailure: (endpoint, reason) => {
      healthReports.push({ endpoint, reason })
    },
  })
  const layer = Router.layer.pipe(
    Layer.provideMerge(
      Layer.mergeAll(
        recordingSelector,
        memoryLeaseLayer,
        RoutingStats.layer,
        consecutiveOutliersLayer,
        health,
        affinityLayer,
      ),
    ),
    Layer.provideMerge(ReplicaPool.layer),
    Layer.provide(Layer.merge(fakeDiscovery(replicas).layer, fakeMetrics().layer)),
    Layer.provide(configLayer({ LOG_EVERY_N_REQUESTS: "0", ...env })),
  )
  return { observed, healthReports, layer }
}

const routed = (result: Attempt | Refusal | undefined): Attempt => {
  expect(isAttempt(result)).toBe(true)
  return result as Attempt
}

const refused = (result: Attempt | Refusal | undefined): Refusal => {
  expect(result).toBeDefined()
  expect(isAttempt(result)).toBe(false)
  return result as Refusal
}

const outcomes = (endpoint: Endpoint): Partial<Record<Outcome, number>> =>
  Object.fromEntries(
    OUTCOMES.flatMap((outcome, i) => (endpoint.outcomes[i]! > 0 ? [[outcome, endpoint.outcomes[i]]] : [])),
  )

const refusedConnection = {
  kind: "refused",
  retryable: true,
  reason: "ECONNREFUSED: connection refused",
} as const
const reset = { kind: "reset", retryable: true, reason: "ECONNRESET: socket hang up" } as const

describe("Router", () => {
  it.effect(
    "routes to the selector's choice, counted, under a lease the attempt releases when it finishes",
    () => {
      const { observed, layer } = setup()
      return Effect.gen(function* () {
        const router = yield* Router
        const leases = yield* LeaseStore
        const stats = yield* RoutingStats
        router.arrived("request")
        const attempt = routed(router.route(FIRST_RETRYABLE))
        const { endpoint } = attempt
        expect(endpoint.active).toBe(1)
        expect(endpoint.picks).toBe(1)
        expect(attempt.panic).toBe(false)
        expect(attempt.responded).toBe(false)

        attempt.respond(200)
        expect(attempt.responded).toBe(true)
        attempt.finish()
        expect(attempt.over).toBe(true)
        expect(endpoint.active).toBe(0)
        expect(outcomes(endpoint)).toEqual({ "2xx": 1 })
        expect(observed).toEqual([{ endpoint, ok: true }])
        // Ending twice changes nothing.
        attempt.finish()
        attempt.abandon()
        expect(observed).toHaveLength(1)
        expect(leases.totals()).toEqual({ acquired: 1, released: 1, expired: 0, active: 0 })
        expect(stats.snapshot()).toMatchObject({
          total_requests: 1,
          routing_decisions: { [endpoint.id]: 1 },
          responses: { "2xx": 1 },
          failures: { client_abort: 0 },
        })
      }).pipe(Effect.provide(layer))
    },
  )

  it.effect(
    "a 5xx answer counts towards ejection and tells the selector it failed; a good answer resets",
    () => {
      const { observed, layer } = setup({ replicas: [replica(1)] })
      return Effect.gen(function* () {
        const router = yield* Router
        const failed = routed(router.route(FIRST_RETRYABLE))
        failed.respond(503)
        failed.finish()
        const { endpoint } = failed
        expect(endpoint.ejection.consecutiveFailures).toBe(1)
        expect(outcomes(endpoint)).toEqual({ "5xx": 1 })
        const good = routed(router.route(FIRST_RETRYABLE))
        good.respond(204)
        good.finish()
        expect(endpoint.ejection.consecutiveFailures).toBe(0)
        expect(observed).toEqual([
          { endpoint, ok: false },
          { endpoint, ok: true },
        ])
      }).pipe(Effect.provide(layer))
    },
  )

  it.effect(
    "an exchange awaits its answer on the endpoint from routing until the answer, however it ends",
    () => {
      const { layer } = setup({ replicas: [replica(1)] })
      return Effect.gen(function* () {
        const router = yield* Router
        yield* TestClock.adjust("1 second")
        const answered = routed(router.route(FIRST_RETRYABLE))
        const { endpoint } = answered
        expect([...endpoint.pending]).toEqual([answered])
        expect(answered.sentAt).toBe(1_000)
        yield* TestClock.adjust("5 millis")
        const abandoned = routed(router.route(FIRST_RETRYABLE))
        const failed = routed(router.route(FIRST_FINAL))
        // Oldest first.
        expect([...endpoint.pending]).toEqual([answered, abandoned, failed])
        // Its answer has begun: a long body still on its way says nothing about a wait.
        answered.respond(200)
        expect([...endpoint.pending]).toEqual([abandoned, failed])
        abandoned.abandon()
        failed.fail(reset)
        answered.finish()
        expect(endpoint.pending.size).toBe(0)
      }).pipe(Effect.provide(layer))
    },
  )

  it.effect("a client that leaves is counted as client_abort and tells the selector nothing", () => {
    const { observed, layer } = setup()
    return Effect.gen(function* () {
      const router = yield* Router
      const stats = yield* RoutingStats
      const early = routed(router.route(FIRST_RETRYABLE))
      early.abandon()
      expect(early.endpoint.active).toBe(0)
      expect(outcomes(early.endpoint)).toEqual({ aborted: 1 })
      // Once the replica answered, its outcome is the answer's.
      const late = routed(router.route(FIRST_RETRYABLE))
      late.respond(200)
      late.abandon()
      expect(late.endpoint.active).toBe(0)
      expect(outcomes(late.endpoint)).toEqual({ "2xx": 1 })
      expect(observed).toEqual([])
      expect(stats.snapshot().failures.client_abort).toBe(2)
    }).pipe(Effect.provide(layer))
  })

  it.effect(
    "a request refused for the client's own fault is counted as such, not against the replica",
    () => {
      const { observed, healthReports, layer } = setup()
      return Effect.gen(function* () {
        const router = yield* Router
        const stats = yield* RoutingStats
        const attempt = routed(router.route(FIRST_RETRYABLE))
        attempt.refuseForClient("request_too_large")
        expect(attempt.endpoint.active).toBe(0)
        expect(outcomes(attempt.endpoint)).toEqual({ aborted: 1 })
        expect(attempt.endpoint.ejection.consecutiveFailures).toBe(0)
        expect(observed).toEqual([])
        expect(healthReports).toEqual([])
        expect(stats.snapshot().failures).toMatchObject({ request_too_large: 1, upstream_error: 0 })
        router.refused("request_too_large")
        expect(stats.snapshot().failures.request_too_large).toBe(2)
      }).pipe(Effect.provide(layer))
    },
  )

  it.effect(
    "an unreachable replica is reported everywhere, and a retryable request retried on another",
    () => {
      const { observed, healthReports, layer } = setup()
      return Effect.gen(function* () {
        const router = yield* Router
        const stats = yield* RoutingStats
        const first = routed(router.route(FIRST_RETRYABLE))
        const retry = routed(first.fail(refusedConnection))
        expect(retry.endpoint).not.toBe(first.endpoint)
        expect(retry.tried).toEqual({ _tag: "Retry", avoid: first.endpoint })
        expect([first.endpoint.active, retry.endpoint.active]).toEqual([0, 1])
        expect(healthReports).toEqual([{ endpoint: first.endpoint, reason: refusedConnection.reason }])
        expect(first.endpoint.ejection.consecutiveFailures).toBe(1)
        expect(outcomes(first.endpoint)).toEqual({ error: 1 })
        expect(observed).toEqual([{ endpoint: first.endpoint, ok: false }])
        expect(stats.snapshot()).toMatchObject({ retries: 1, retries_denied: 0 })

        // A retry is not retried again: the client gets the failure. A reset is not health's business.
        const answer = refused(retry.fail(reset))
        expect(answer.status).toBe(502)
        expect(answer.body.error).toBe("upstream_error")
        expect(answer.body.message).toContain(retry.endpoint.replica.name)
        expect(answer.body.message).toContain(reset.reason)
        expect(healthReports).toHaveLength(1)
        expect(retry.endpoint.ejection.consecutiveFailures).toBe(1)
        expect(stats.snapshot()).toMatchObject({ retries: 1, failures: { upstream_error: 1 } })
      }).pipe(Effect.provide(layer))
    },
  )

  it.effect("a request that may not be retried gets 502 for a broken exchange, 504 for a timeout", () => {
    const { layer } = setup()
    return Effect.gen(function* () {
      const router = yield* Router
      const stats = yield* RoutingStats
      const broken = refused(routed(router.route(FIRST_FINAL)).fail(reset))
      expect(broken).toMatchObject({ status: 502, body: { error: "upstream_error" } })
      const slow = routed(router.route(FIRST_FINAL))
      const timedOut = refused(
        slow.fail({ kind: "response_timeout", retryable: true, reason: "no response within 60 s" }),
      )
      expect(timedOut).toMatchObject({ status: 504, body: { error: "upstream_timeout" } })
      expect(slow.endpoint.ejection.consecutiveFailures).toBe(1)
      expect(stats.snapshot()).toMatchObject({
        retries: 0,
        failures: { upstream_error: 1, upstream_timeout: 1 },
      })
    }).pipe(Effect.provide(layer))
  })

  it.effect("a failure after the replica began answering is not retried", () => {
    const { observed, layer } = setup()
    return Effect.gen(function* () {
      const router = yield* Router
      const stats = yield* RoutingStats
      const attempt = routed(router.route(FIRST_RETRYABLE))
      attempt.respond(200)
      expect(refused(attempt.fail({ ...reset, kind: "idle_timeout" }))).toMatchObject({ status: 504 })
      expect(outcomes(attempt.endpoint)).toEqual({ "2xx": 1 })
      expect(observed).toEqual([{ endpoint: attempt.endpoint, ok: false }])
      expect(stats.snapshot()).toMatchObject({ retries: 0, retries_denied: 0 })
    }).pipe(Effect.provide(layer))
  })

  it.effect("a failure after the client left reports nothing more", () => {
    const { observed, healthReports, layer } = setup()
    return Effect.gen(function* () {
      const router = yield* Router
      const attempt = routed(router.route(FIRST_RETRYABLE))
      attempt.abandon()
      expect(attempt.fail(refusedConnection)).toBeUndefined()
      expect(observed).toEqual([])
      expect(healthReports).toEqual([])
      expect(attempt.endpoint.ejection.consecutiveFailures).toBe(0)
    }).pipe(Effect.provide(layer))
  })

  it.effect("with a single candidate, a failure is not retried and spends no budget", () => {
    const { layer } = setup({ replicas: [replica(1)], env: { RETRY_BURST: "1" } })
    return Effect.gen(function* () {
      const router = yield* Router
      const stats = yield* RoutingStats
      expect(refused(routed(router.route(FIRST_RETRYABLE)).fail(reset)).status).toBe(502)
      expect(stats.snapshot()).toMatchObject({ retries: 0, retries_denied: 0 })
      // The token is still there for when another replica is.
      const pool = yield* ReplicaPool
      expect(pool.candidates().endpoints).toHaveLength(1)
    }).pipe(Effect.provide(layer))
  })

  it.effect("retries take tokens from the budget only requests fill", () => {
    const { layer } = setup({ env: { RETRY_BURST: "1", RETRY_BUDGET: "0.5" } })
    return Effect.gen(function* () {
      const router = yield* Router
      const stats = yield* RoutingStats
      // The reserve's one token goes to the first retry.
      expect(isAttempt(routed(router.route(FIRST_RETRYABLE)).fail(reset))).toBe(true)
      router.arrived("upgrade")
      router.arrived("upgrade")
      expect(refused(routed(router.route(FIRST_RETRYABLE)).fail(reset)).status).toBe(502)
      expect(stats.snapshot()).toMatchObject({ retries: 1, retries_denied: 1, total_requests: 2 })
      router.arrived("request")
      router.arrived("request")
      expect(isAttempt(routed(router.route(FIRST_RETRYABLE)).fail(reset))).toBe(true)
      expect(stats.snapshot()).toMatchObject({ retries: 2, retries_denied: 1, total_requests: 4 })
    }).pipe(Effect.provide(layer))
  })

  it.effect("when no replica is healthy and the chosen one is unreachable, the client gets 503", () => {
    const { layer } = setup()
    return Effect.gen(function* () {
      const router = yield* Router
      const pool = yield* ReplicaPool
      const stats = yield* RoutingStats
      for (const endpoint of pool.endpoints()) endpoint.health.healthy = false
      pool.invalidate()
      const attempt = routed(router.route(FIRST_FINAL))
      expect(attempt.panic).toBe(true)
      expect(refused(attempt.fail(refusedConnection))).toMatchObject({
        status: 503,
        body: { error: "no_healthy_replica" },
      })
      expect(stats.snapshot().panic_decisions).toBe(1)
    }).pipe(Effect.provide(layer))
  })

  it.effect("refuses with 503, counted, while no replica is known", () => {
    const { layer } = setup({ replicas: [] })
    return Effect.gen(function* () {
      const router = yield* Router
      expect(refused(router.route(FIRST_RETRYABLE))).toMatchObject({
        status: 503,
        body: { error: "no_replica" },
      })
      expect((yield* RoutingStats).snapshot().failures.no_replica).toBe(1)
    }).pipe(Effect.provide(layer))
  })

  it.effect("refuses with 503 when no replica has fresh metrics and FALLBACK_ENABLED is false", () => {
    const { layer } = setup({ algorithm: "metrics", env: { FALLBACK_ENABLED: "false" } })
    return Effect.gen(function* () {
      const router = yield* Router
      expect(refused(router.route(FIRST_RETRYABLE))).toMatchObject({
        status: 503,
        body: { error: "no_fresh_metrics" },
      })
      expect((yield* RoutingStats).snapshot().failures.no_replica).toBe(1)
      expect((yield* LeaseStore).totals().acquired).toBe(0)
    }).pipe(Effect.provide(layer))
  })

  it.effect(
    "an upgrade settles after its handshake, renews its lease, and is released when it closes",
    () => {
      const { observed, layer } = setup({ env: { LEASE_DURATION: "30" } })
      return Effect.gen(function* () {
        const router = yield* Router
        router.arrived("upgrade")
        const attempt = routed(router.route(FIRST_FINAL))
        const { endpoint } = attempt
        attempt.respond(101)
        attempt.settle()
        expect(observed).toEqual([{ endpoint, ok: true }])
        expect(endpoint.active).toBe(1)
        // Renewed at 20 s, the lease outlives its first 30 s.
        yield* TestClock.adjust("20 seconds")
        attempt.renew()
        yield* TestClock.adjust("20 seconds")
        expect(endpoint.active).toBe(1)
        attempt.finish()
        expect(endpoint.active).toBe(0)
        expect(observed).toHaveLength(1)
        expect((yield* LeaseStore).totals()).toMatchObject({ expired: 0, released: 1 })
      }).pipe(Effect.provide(layer))
    },
  )
})
