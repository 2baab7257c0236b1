/**
 * The Router's caps and queue under random traffic: requests arrive, exchanges end, queued clients
 * leave and time passes, in any order, on replicas with random caps. After every step no replica holds
 * more than its cap, the queue is no longer than QUEUE_SIZE and serves first come first served, and
 * nobody waits while a replica has room.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, FastCheck as fc, TestClock } from "effect"
import { type Attempt, FIRST_FINAL, type Refusal } from "../../src/Attempt.ts"
import { Ticket } from "../../src/limits/request-queue.ts"
import { ReplicaPool } from "../../src/ReplicaPool.ts"
import { isAttempt, Router } from "../../src/Router.ts"
import { replica, routerOver } from "./fakes.ts"

/** Lets the microtask an ending exchange queued run: the one that serves the queue. */
const settle = Effect.promise(() => Promise.resolve())

const step = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("arrive" as const) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("finish" as const), index: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("cancel" as const), index: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant("wait" as const), millis: fc.integer({ min: 0, max: 3_000 }) }),
  },
)

const scenario = fc.record({
  // A replica's own cap, or the route's (REPLICA_MAX_REQUESTS) where it has none.
  caps: fc.array(fc.option(fc.integer({ min: 1, max: 3 }), { nil: undefined }), {
    minLength: 1,
    maxLength: 4,
  }),
  routeCap: fc.integer({ min: 1, max: 3 }),
  queueSize: fc.integer({ min: 0, max: 4 }),
  timeoutSeconds: fc.integer({ min: 1, max: 2 }),
  algorithm: fc.constantFrom("round-robin" as const, "lease" as const),
  steps: fc.array(step, { minLength: 40, maxLength: 150 }),
})

interface Waiting {
  readonly id: number
  readonly ticket: Ticket
  readonly since: number
}

describe("Router caps and queue under random traffic", () => {
  it.effect.prop(
    "never over a cap or QUEUE_SIZE, first come first served, and nobody waits while there is room",
    [scenario],
    ([{ caps, routeCap, queueSize, timeoutSeconds, algorithm, steps }]) => {
      const replicas = caps.map((maxRequests, i) => ({ ...replica(i + 1), maxRequests }))
      const timeoutMs = timeoutSeconds * 1_000
      const env = {
        REPLICA_MAX_REQUESTS: String(routeCap),
        QUEUE_SIZE: String(queueSize),
        QUEUE_TIMEOUT: String(timeoutSeconds),
        // Exchanges end only when a step ends them.
        LEASE_DURATION: "86400",
        LEASE_CLEANUP_INTERVAL: "3600",
      }
      return Effect.gen(function* () {
        const router = yield* Router
        const endpoints = (yield* ReplicaPool).endpoints()
        const clock = yield* Effect.clock
        const capOf = caps.map((cap) => cap ?? routeCap)
        expect(endpoints.map((endpoint) => endpoint.maxRequests)).toEqual(capOf)
        const inFlight: Array<Attempt> = []
        const queue: Array<Waiting> = []
        const left = new Set<number>()
        const deliveries: Array<{
          readonly id: number
          readonly routed: Attempt | Refusal
          readonly at: number
        }> = []
        const served: Array<number> = []
        let nextId = 0

        const timedOut = expect.objectContaining({
          status: 503,
          body: expect.objectContaining({ error: "queue_timeout" }),
        })
        const hasRoom = () => endpoints.some((endpoint) => endpoint.inFlight < endpoint.maxRequests)

        for (const op of steps) {
          const seen = deliveries.length
          const now = clock.unsafeCurrentTimeMillis()
          if (op.kind === "arrive") {
            const room = hasRoom()
            const result = router.routeOrQueue(FIRST_FINAL)
            if (queue.length === 0 && room) {
              expect(isAttempt(result)).toBe(true)
              inFlight.push(result as Attempt)
            } else if (queue.length < queueSize) {
              expect(result).toBeInstanceOf(Ticket)
              const id = nextId++
              const ticket = result as Ticket
              ticket.deliver = (routed) =>
                deliveries.push({ id, routed, at: clock.unsafeCurrentTimeMillis() })
              queue.push({ id, ticket, since: now })
            } else {
              expect(result).toMatchObject({ status: 503, body: { error: "queue_full" } })
            }
          } else if (op.kind === "finish" && inFlight.length > 0) {
            const [attempt] = inFlight.splice(op.index % inFlight.length, 1)
            attempt!.respond(200)
            attempt!.finish()
            // Served in a microtask, never from inside the ending call.
            expect(deliveries.length).toBe(seen)
          } else if (op.kind === "cancel" && queue.length > 0) {
            const [leaving] = queue.splice(op.index % queue.length, 1)
            leaving!.ticket.cancel()
            left.add(leaving!.id)
          } else if (op.kind === "wait") {
            yield* TestClock.adjust(op.millis)
          }
          yield* settle

          // What this step delivered went to the oldest waiting: attempts in order when an exchange
          // ended, refusals exactly at QUEUE_TIMEOUT when time passed. (TestClock wakes sleeps due at
          // one instant last-registered first, where real timers keep their order: same-instant
          // timeouts are compared as a set.)
          const delivered = deliveries.slice(seen)
          const heads = queue.splice(0, delivered.length)
          if (op.kind === "wait") {
            const byId = (a: { id: number }, b: { id: number }) => a.id - b.id
            expect([...delivered].sort(byId)).toEqual(
              heads.map(({ id, since }) => ({ id, routed: timedOut, at: since + timeoutMs })),
            )
          } else {
            expect(delivered.map(({ id }) => id)).toEqual(heads.map(({ id }) => id))
            for (const { id, routed } of delivered) {
              expect(isAttempt(routed)).toBe(true)
              inFlight.push(routed as Attempt)
              served.push(id)
            }
          }
          const after = clock.unsafeCurrentTimeMillis()
          // Whoever is still waiting has not waited out QUEUE_TIMEOUT.
          for (const { since } of queue) expect(after - since).toBeLessThan(timeoutMs)

          for (const [i, endpoint] of endpoints.entries()) {
            expect(endpoint.inFlight).toBeLessThanOrEqual(capOf[i]!)
          }
          expect(endpoints.reduce((sum, endpoint) => sum + endpoint.inFlight, 0)).toBe(inFlight.length)
          expect(router.queue().length).toBe(queue.length)
          expect(queue.length).toBeLessThanOrEqual(queueSize)
          // Work-conserving: a request waits only while every replica is at its cap.
          if (queue.length > 0) expect(hasRoom()).toBe(false)
        }
        // Nobody who left was delivered anything, nobody twice, and those served went in arrival order.
        const ids = deliveries.map(({ id }) => id)
        expect(ids.filter((id) => left.has(id))).toEqual([])
        expect(new Set(ids).size).toBe(ids.length)
        expect(served).toEqual([...served].sort((a, b) => a - b))
      }).pipe(Effect.provide(routerOver(replicas, env, algorithm)))
    },
    { fastCheck: { seed: 20261210, numRuns: 100 } },
  )
})
