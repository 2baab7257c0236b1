/**
 * The Router with `REPLICA_MAX_REQUESTS`: only replicas below their cap are candidates, a request
 * that finds none waits in the route's queue, and an exchange that ends hands its place to the
 * oldest waiting request in a microtask; the queue's limits in length and in time. Time is TestClock.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, TestClock } from "effect"
import { type Attempt, FIRST_FINAL, FIRST_RETRYABLE, type Refusal } from "../../src/Attempt.ts"
import type { Endpoint } from "../../src/Endpoint.ts"
import { LeaseStore } from "../../src/LeaseStore.ts"
import { Ticket } from "../../src/limits/request-queue.ts"
import { ReplicaPool } from "../../src/ReplicaPool.ts"
import { isAttempt, Router } from "../../src/Router.ts"
import { RoutingStats } from "../../src/RoutingStats.ts"
import { capped, replica, routerOver } from "./fakes.ts"

/** Lets the microtask an ending exchange queued run: the one that serves the queue. */
const settle = Effect.promise(() => Promise.resolve())

const routed = (result: Attempt | Refusal | Ticket | undefined): Attempt => {
  expect(isAttempt(result)).toBe(true)
  return result as Attempt
}

const refused = (result: Attempt | Refusal | Ticket | undefined): Refusal => {
  expect(result).toBeDefined()
  expect(isAttempt(result) || result instanceof Ticket).toBe(false)
  return result as Refusal
}

/** A ticket whose deliveries are recorded in `delivered`. */
const waiting = (result: Attempt | Refusal | Ticket) => {
  expect(result).toBeInstanceOf(Ticket)
  const ticket = result as Ticket
  const delivered: Array<Attempt | Refusal> = []
  ticket.deliver = (next) => delivered.push(next)
  return { ticket, delivered }
}

const inFlightOf = (endpoints: ReadonlyArray<Endpoint>) => endpoints.map((endpoint) => endpoint.inFlight)

describe("Router with per-replica caps", () => {
  it.effect("offers only the replicas below their cap, and queues when none is", () =>
    Effect.gen(function* () {
      const router = yield* Router
      const stats = yield* RoutingStats
      const endpoints = (yield* ReplicaPool).endpoints()
      const attempts = [0, 1, 2].map(() => routed(router.routeOrQueue(FIRST_RETRYABLE)))
      expect(inFlightOf(endpoints)).toEqual([1, 2])
      expect(attempts.map((attempt) => attempt.endpoint.id)).toEqual(["replica-1", "replica-2", "replica-2"])
      const { ticket } = waiting(router.routeOrQueue(FIRST_RETRYABLE))
      expect(ticket.tried).toBe(FIRST_RETRYABLE)
      expect(router.queue().length).toBe(1)
      // `route` (a retry's way) never queues: every replica at its cap is a refusal at once.
      expect(refused(router.route(FIRST_RETRYABLE))).toEqual({
        status: 503,
        retryAfterSeconds: 1,
        body: {
          error: "queue_full",
          message: "every replica of web-stress is at its REPLICA_MAX_REQUESTS and the queue is full",
        },
      })
      expect(stats.snapshot().failures).toMatchObject({ queue_full: 1, queue_timeout: 0 })
      expect(inFlightOf(endpoints)).toEqual([1, 2])
    }).pipe(Effect.provide(routerOver([capped(1, 1), capped(2, 2)]))),
  )

  it.effect("takes REPLICA_MAX_REQUESTS for replicas without a cap of their own", () =>
    Effect.gen(function* () {
      const endpoints = (yield* ReplicaPool).endpoints()
      expect(endpoints.map((endpoint) => endpoint.maxRequests)).toEqual([2, 1])
      const router = yield* Router
      for (let i = 0; i < 3; i++) routed(router.routeOrQueue(FIRST_RETRYABLE))
      expect(inFlightOf(endpoints)).toEqual([2, 1])
      waiting(router.routeOrQueue(FIRST_RETRYABLE))
    }).pipe(Effect.provide(routerOver([replica(1), capped(2, 1)], { REPLICA_MAX_REQUESTS: "2" }))),
  )

  it.effect("never queues without a cap", () =>
    Effect.gen(function* () {
      const router = yield* Router
      for (let i = 0; i < 50; i++) routed(router.routeOrQueue(FIRST_RETRYABLE))
      expect(inFlightOf((yield* ReplicaPool).endpoints())).toEqual([25, 25])
      expect(router.queue().counts.queued).toBe(0)
    }).pipe(Effect.provide(routerOver([replica(1), replica(2)]))),
  )

  it.effect("serves a ticket in a microtask after an exchange ends, on the replica it freed", () =>
    Effect.gen(function* () {
      const router = yield* Router
      const first = routed(router.routeOrQueue(FIRST_RETRYABLE))
      const second = routed(router.routeOrQueue(FIRST_RETRYABLE))
      const { delivered } = waiting(router.routeOrQueue(FIRST_RETRYABLE))
      yield* TestClock.adjust("250 millis")
      second.respond(200)
      second.finish()
      // Never from inside the ending exchange's own call.
      expect(delivered).toEqual([])
      expect(second.endpoint.active).toBe(0)
      yield* settle
      expect(delivered).toHaveLength(1)
      const served = routed(delivered[0])
      expect(served.endpoint).toBe(second.endpoint)
      expect(served.tried).toBe(FIRST_RETRYABLE)
      expect(served.sentAt).toBe(250)
      expect(inFlightOf([first.endpoint, second.endpoint])).toEqual([1, 1])
      expect(router.queue()).toMatchObject({
        length: 0,
        counts: { queued: 1, served: 1, full: 0, timedOut: 0, abandoned: 0 },
        waitTimes: { count: 1, sumSeconds: 0.25 },
      })
    }).pipe(Effect.provide(routerOver([capped(1, 1), capped(2, 1)]))),
  )

  it.effect("an exchange that fails or is abandoned frees its place as well", () =>
    Effect.gen(function* () {
      const router = yield* Router
      const first = routed(router.routeOrQueue(FIRST_FINAL))
      const a = waiting(router.routeOrQueue(FIRST_FINAL))
      const b = waiting(router.routeOrQueue(FIRST_FINAL))
      expect(refused(first.fail({ kind: "reset", retryable: true, reason: "ECONNRESET" })).status).toBe(502)
      yield* settle
      const second = routed(a.delivered[0])
      expect(b.delivered).toEqual([])
      second.abandon()
      yield* settle
      expect(routed(b.delivered[0]).endpoint).toBe(first.endpoint)
      expect(first.endpoint.active).toBe(1)
    }).pipe(Effect.provide(routerOver([capped(1, 1)]))),
  )

  it.effect("a newcomer waits behind the queue even when an exchange has just freed a place", () =>
    Effect.gen(function* () {
      const router = yield* Router
      const first = routed(router.routeOrQueue(FIRST_RETRYABLE))
      const early = waiting(router.routeOrQueue(FIRST_RETRYABLE))
      first.finish()
      const late = waiting(router.routeOrQueue(FIRST_RETRYABLE))
      yield* settle
      const served = routed(early.delivered[0])
      expect(late.delivered).toEqual([])
      expect(router.queue().length).toBe(1)
      served.finish()
      yield* settle
      routed(late.delivered[0])
      expect(first.endpoint.active).toBe(1)
    }).pipe(Effect.provide(routerOver([capped(1, 1)]))),
  )

  it.effect("an exchange that ends serves every waiting request there is room for, oldest first", () =>
    Effect.gen(function* () {
      const router = yield* Router
      const pool = yield* ReplicaPool
      const held = [0, 1, 2].map(() => routed(router.routeOrQueue(FIRST_RETRYABLE)))
      const tickets = [0, 1, 2, 3].map(() => waiting(router.routeOrQueue(FIRST_RETRYABLE)))
      // The other replica's cap is raised (as a reload would) while requests wait.
      pool.endpoints()[1]!.maxRequests = 3
      held[0]!.finish()
      yield* settle
      expect(tickets.map(({ delivered }) => delivered.length)).toEqual([1, 1, 1, 0])
      expect(inFlightOf(pool.endpoints())).toEqual([2, 3])
    }).pipe(Effect.provide(routerOver([capped(1, 2), capped(2, 1)]))),
  )

  it.effect("refuses with 503 queue_full at once when the queue is full", () =>
    Effect.gen(function* () {
      const router = yield* Router
      routed(router.routeOrQueue(FIRST_RETRYABLE))
      waiting(router.routeOrQueue(FIRST_RETRYABLE))
      waiting(router.routeOrQueue(FIRST_RETRYABLE))
      expect(refused(router.routeOrQueue(FIRST_RETRYABLE))).toMatchObject({
        status: 503,
        retryAfterSeconds: 1,
        body: { error: "queue_full" },
      })
      expect(router.queue()).toMatchObject({ length: 2, counts: { queued: 2, full: 1 } })
      expect((yield* RoutingStats).snapshot().failures.queue_full).toBe(1)
    }).pipe(Effect.provide(routerOver([capped(1, 1)], { QUEUE_SIZE: "2" }))),
  )

  it.effect("with QUEUE_SIZE=0, refuses instead of queueing", () =>
    Effect.gen(function* () {
      const router = yield* Router
      routed(router.routeOrQueue(FIRST_RETRYABLE))
      expect(refused(router.routeOrQueue(FIRST_RETRYABLE)).body.error).toBe("queue_full")
    }).pipe(Effect.provide(routerOver([capped(1, 1)], { QUEUE_SIZE: "0" }))),
  )

  it.effect("refuses with 503 queue_timeout exactly at QUEUE_TIMEOUT, not a millisecond before", () =>
    Effect.gen(function* () {
      const router = yield* Router
      const first = routed(router.routeOrQueue(FIRST_RETRYABLE))
      const { delivered } = waiting(router.routeOrQueue(FIRST_RETRYABLE))
      yield* TestClock.adjust(1_999)
      expect(delivered).toEqual([])
      expect(router.queue().length).toBe(1)
      yield* TestClock.adjust(1)
      expect(delivered).toEqual([
        {
          status: 503,
          retryAfterSeconds: 1,
          body: { error: "queue_timeout", message: "no replica of web-stress had room within QUEUE_TIMEOUT" },
        },
      ])
      expect(router.queue()).toMatchObject({ length: 0, counts: { timedOut: 1 } })
      expect((yield* RoutingStats).snapshot().failures.queue_timeout).toBe(1)
      // The place that frees afterwards is nobody's: nothing more is delivered.
      first.finish()
      yield* settle
      expect(delivered).toHaveLength(1)
      expect(first.endpoint.active).toBe(0)
    }).pipe(Effect.provide(routerOver([capped(1, 1)], { QUEUE_TIMEOUT: "2" }))),
  )

  it.effect("a client that leaves while queued frees its place and is never delivered anything", () =>
    Effect.gen(function* () {
      const router = yield* Router
      const first = routed(router.routeOrQueue(FIRST_RETRYABLE))
      const leaving = waiting(router.routeOrQueue(FIRST_RETRYABLE))
      expect(refused(router.routeOrQueue(FIRST_RETRYABLE)).body.error).toBe("queue_full")
      leaving.ticket.cancel()
      const staying = waiting(router.routeOrQueue(FIRST_RETRYABLE))
      first.finish()
      yield* settle
      yield* TestClock.adjust("1 minute")
      expect(leaving.delivered).toEqual([])
      routed(staying.delivered[0])
      expect(router.queue().counts).toMatchObject({ queued: 2, served: 1, abandoned: 1, timedOut: 0 })
    }).pipe(Effect.provide(routerOver([capped(1, 1)], { QUEUE_SIZE: "1" }))),
  )

  it.effect("a waiting request gets 503 no_replica when no replica is left to serve it", () =>
    Effect.gen(function* () {
      const router = yield* Router
      const pool = yield* ReplicaPool
      const first = routed(router.routeOrQueue(FIRST_RETRYABLE))
      const { delivered } = waiting(router.routeOrQueue(FIRST_RETRYABLE))
      // Its only replica is drained (weight 0): nothing new is sent there.
      first.endpoint.weight = 0
      pool.invalidate()
      first.finish()
      yield* settle
      expect(delivered).toEqual([
        { status: 503, body: { error: "no_replica", message: "no replica of web-stress is known yet" } },
      ])
      expect(router.queue().length).toBe(0)
      expect(first.endpoint.active).toBe(0)
    }).pipe(Effect.provide(routerOver([capped(1, 1)]))),
  )

  it.effect("a retry goes only where there is room, and is not sent when there is none", () =>
    Effect.gen(function* () {
      const router = yield* Router
      const reset = { kind: "reset", retryable: true, reason: "ECONNRESET" } as const
      const first = routed(router.routeOrQueue(FIRST_RETRYABLE))
      const second = routed(router.routeOrQueue(FIRST_RETRYABLE))
      // The other replica is at its cap: the failure goes to the client, no budget spent.
      expect(refused(first.fail(reset)).status).toBe(502)
      expect((yield* RoutingStats).snapshot()).toMatchObject({ retries: 0, retries_denied: 0 })
      expect(inFlightOf([first.endpoint, second.endpoint])).toEqual([0, 1])
      // Now the first one has room again: the second's retry goes there.
      const retry = routed(second.fail(reset))
      expect(retry.endpoint).toBe(first.endpoint)
      expect(inFlightOf([first.endpoint, second.endpoint])).toEqual([1, 0])
    }).pipe(Effect.provide(routerOver([capped(1, 1), capped(2, 1)], { RETRY_BURST: "5" }))),
  )
})

describe("Router with per-replica caps, when a lease expires", () => {
  // LEASE_DURATION only guards the lease count against leaks; the cap counts exchanges under way. A
  // request slower than LEASE_DURATION keeps its place, so the replica never gets one more.
  it.effect("a request that outlives its lease keeps its place: the cap holds", () =>
    Effect.gen(function* () {
      const router = yield* Router
      const leases = yield* LeaseStore
      const slow = routed(router.routeOrQueue(FIRST_RETRYABLE))
      yield* TestClock.adjust("2 seconds")
      expect(leases.totals().expired).toBe(1)
      expect(slow.endpoint.active).toBe(0)
      expect(slow.endpoint.hasRoom).toBe(false)
      const next = router.routeOrQueue(FIRST_RETRYABLE)
      expect(next).toBeInstanceOf(Ticket)
      const answers: Array<Attempt | Refusal> = []
      ;(next as Ticket).deliver = (delivered) => answers.push(delivered)
      slow.finish()
      yield* settle
      expect(answers.filter(isAttempt)).toHaveLength(1)
      expect(slow.endpoint.inFlight).toBe(1)
    }).pipe(
      Effect.provide(
        routerOver([capped(1, 1)], {
          LEASE_DURATION: "1",
          LEASE_CLEANUP_INTERVAL: "0.5",
          QUEUE_TIMEOUT: "30",
        }),
      ),
    ),
  )
})
