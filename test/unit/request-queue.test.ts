/**
 * The request queue on its own, timers on TestClock: first come first served, bounded in length and
 * in time, a cancelled ticket gone for good, and its counts and waits.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, FastCheck as fc, TestClock } from "effect"
import { type Attempt, FIRST_RETRYABLE, type Refusal } from "../../src/Attempt.ts"
import { makeRequestQueue, type Ticket } from "../../src/limits/request-queue.ts"
import { clockTimer } from "./fakes.ts"

const TIMEOUT_MS = 5_000

const timedOut = (): Refusal => ({
  status: 503,
  retryAfterSeconds: 1,
  body: { error: "queue_timeout", message: "waited too long" },
})

/** What `serve` hands a ticket here: a stand-in for its attempt, naming the ticket. */
const placed = (ticket: Ticket) => ({ placedFor: ticket.key }) as unknown as Attempt

/** A queue of `size` places whose tickets, named by their key, record what they are delivered. */
const makeQueue = (size: number) =>
  Effect.map(clockTimer, (timer) => {
    const queue = makeRequestQueue(size, TIMEOUT_MS, timer, timedOut)
    const delivered: Array<{
      readonly key: string
      readonly routed: Attempt | Refusal
      readonly at: number
    }> = []
    const enqueue = (key: string) => {
      const ticket = queue.enqueue(FIRST_RETRYABLE, key)
      if (ticket !== undefined) ticket.deliver = (routed) => delivered.push({ key, routed, at: timer.now() })
      return ticket
    }
    /** Serves while there are `room` places, as the Router does while replicas have room. */
    const serve = (room: number) => {
      let left = room
      queue.serve((ticket) => (left-- > 0 ? placed(ticket) : undefined))
    }
    const servedKeys = () => delivered.filter(({ routed }) => "placedFor" in routed).map(({ key }) => key)
    /** What was delivered, without the time: the tests that move the clock say when. */
    const deliveries = () => delivered.map(({ key, routed }) => ({ key, routed }))
    return { queue, delivered, deliveries, enqueue, serve, servedKeys }
  })

describe("request queue", () => {
  it.scoped("serves in the order enqueued, as many as there is room for", () =>
    Effect.gen(function* () {
      const { queue, enqueue, serve, servedKeys } = yield* makeQueue(10)
      for (const key of ["a", "b", "c", "d"]) enqueue(key)
      expect(queue.length()).toBe(4)
      serve(0)
      expect(servedKeys()).toEqual([])
      serve(1)
      expect(servedKeys()).toEqual(["a"])
      serve(2)
      expect(servedKeys()).toEqual(["a", "b", "c"])
      enqueue("e")
      serve(5)
      expect(servedKeys()).toEqual(["a", "b", "c", "d", "e"])
      expect(queue.length()).toBe(0)
      expect(queue.counts()).toEqual({ queued: 5, served: 5, full: 0, timedOut: 0, abandoned: 0 })
    }),
  )

  it.scoped("delivers a refusal the router gives a ticket, which leaves the queue like a served one", () =>
    Effect.gen(function* () {
      const { queue, enqueue, deliveries } = yield* makeQueue(10)
      enqueue("a")
      enqueue("b")
      const gone: Refusal = { status: 503, body: { error: "no_replica", message: "none left" } }
      queue.serve(() => gone)
      expect(deliveries()).toEqual([
        { key: "a", routed: gone },
        { key: "b", routed: gone },
      ])
      expect(queue.length()).toBe(0)
    }),
  )

  it.scoped("refuses a request when full, counted, and takes one again once a place is free", () =>
    Effect.gen(function* () {
      const { queue, enqueue, serve } = yield* makeQueue(2)
      expect(enqueue("a")).toBeDefined()
      expect(enqueue("b")).toBeDefined()
      expect(enqueue("c")).toBeUndefined()
      expect(enqueue("d")).toBeUndefined()
      expect(queue.counts()).toMatchObject({ queued: 2, full: 2 })
      serve(1)
      expect(enqueue("e")).toBeDefined()
      expect(queue.length()).toBe(2)

      const none = yield* makeQueue(0)
      expect(none.enqueue("a")).toBeUndefined()
      expect(none.queue.counts()).toMatchObject({ queued: 0, full: 1 })
    }),
  )

  it.scoped("times a ticket out exactly at the timeout, not a millisecond before", () =>
    Effect.gen(function* () {
      const { queue, enqueue, delivered } = yield* makeQueue(10)
      enqueue("a")
      yield* TestClock.adjust("1 second")
      enqueue("b")
      yield* TestClock.adjust(TIMEOUT_MS - 1_000 - 1)
      expect(delivered).toEqual([])
      expect(queue.length()).toBe(2)
      yield* TestClock.adjust(1)
      expect(delivered).toEqual([{ key: "a", routed: timedOut(), at: TIMEOUT_MS }])
      expect(queue.length()).toBe(1)
      yield* TestClock.adjust(999)
      expect(delivered).toHaveLength(1)
      yield* TestClock.adjust(1)
      expect(delivered).toEqual([
        { key: "a", routed: timedOut(), at: TIMEOUT_MS },
        { key: "b", routed: timedOut(), at: TIMEOUT_MS + 1_000 },
      ])
      expect(queue.counts()).toEqual({ queued: 2, served: 0, full: 0, timedOut: 2, abandoned: 0 })
      expect(queue.waitTimes()).toMatchObject({ count: 2, sumSeconds: 10 })
    }),
  )

  it.scoped("stops a served ticket's timer", () =>
    Effect.gen(function* () {
      const { queue, enqueue, serve, delivered } = yield* makeQueue(10)
      enqueue("a")
      yield* TestClock.adjust("2 seconds")
      serve(1)
      yield* TestClock.adjust(TIMEOUT_MS * 2)
      expect(delivered).toHaveLength(1)
      expect(queue.counts()).toMatchObject({ served: 1, timedOut: 0 })
      expect(queue.waitTimes()).toMatchObject({ count: 1, sumSeconds: 2 })
    }),
  )

  it.scoped("a cancelled ticket frees its place, is skipped, and is never delivered anything", () =>
    Effect.gen(function* () {
      const { queue, enqueue, serve, delivered, servedKeys } = yield* makeQueue(2)
      const a = enqueue("a")!
      enqueue("b")
      expect(enqueue("c")).toBeUndefined()
      yield* TestClock.adjust("1 second")
      a.cancel()
      expect(queue.length()).toBe(1)
      // Cancelling twice, or after being served, counts once.
      a.cancel()
      expect(enqueue("d")).toBeDefined()
      serve(5)
      expect(servedKeys()).toEqual(["b", "d"])
      yield* TestClock.adjust(TIMEOUT_MS * 2)
      expect(delivered.map(({ key }) => key)).toEqual(["b", "d"])
      expect(queue.counts()).toEqual({ queued: 3, served: 2, full: 1, timedOut: 0, abandoned: 1 })
      expect(queue.waitTimes()).toMatchObject({ count: 3, sumSeconds: 2 })
    }),
  )

  it.scoped("a ticket cancelled after it was served changes nothing", () =>
    Effect.gen(function* () {
      const { queue, enqueue, serve } = yield* makeQueue(2)
      const a = enqueue("a")!
      serve(1)
      a.cancel()
      expect(queue.counts()).toMatchObject({ served: 1, abandoned: 0 })
    }),
  )

  const operation = fc.oneof(
    { weight: 4, arbitrary: fc.record({ kind: fc.constant("enqueue" as const) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant("cancel" as const), index: fc.nat() }) },
    {
      weight: 2,
      arbitrary: fc.record({ kind: fc.constant("serve" as const), room: fc.integer({ min: 0, max: 3 }) }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant("advance" as const),
        millis: fc.oneof(fc.integer({ min: 0, max: TIMEOUT_MS }), fc.constant(TIMEOUT_MS)),
      }),
    },
  )

  it.scoped.prop(
    "is a bounded FIFO: served in order, timed out exactly on time, never longer than its size",
    [fc.integer({ min: 0, max: 5 }), fc.array(operation, { maxLength: 150 })],
    ([size, operations]) =>
      Effect.gen(function* () {
        const { queue, enqueue, serve, delivered, servedKeys } = yield* makeQueue(size)
        const clock = yield* Effect.clock
        // The model: who waits, in order, since when.
        const waiting: Array<{ readonly key: string; readonly ticket: Ticket; readonly at: number }> = []
        let next = 0
        for (const op of operations) {
          const before = delivered.length
          const now = clock.unsafeCurrentTimeMillis()
          if (op.kind === "enqueue") {
            const key = `t${next++}`
            const ticket = enqueue(key)
            expect(ticket === undefined).toBe(waiting.length >= size)
            if (ticket !== undefined) waiting.push({ key, ticket, at: now })
          } else if (op.kind === "cancel" && waiting.length > 0) {
            const [gone] = waiting.splice(op.index % waiting.length, 1)
            gone!.ticket.cancel()
          } else if (op.kind === "serve") {
            const heads = waiting.splice(0, op.room).map(({ key }) => key)
            serve(op.room)
            expect(delivered.slice(before).map(({ key }) => key)).toEqual(heads)
          } else if (op.kind === "advance") {
            yield* TestClock.adjust(op.millis)
            const due = waiting.filter(({ at }) => at + TIMEOUT_MS <= now + op.millis)
            waiting.splice(0, due.length)
            // Each at its own timeout to the millisecond. (TestClock wakes sleeps due at one instant
            // last-registered first, where real timers keep their order: same-instant ones are a set.)
            const expired = delivered.slice(before)
            const byKey = (a: { key: string }, b: { key: string }) => a.key.localeCompare(b.key)
            expect(expired.map(({ key, at }) => ({ key, at })).sort(byKey)).toEqual(
              due.map(({ key, at }) => ({ key, at: at + TIMEOUT_MS })).sort(byKey),
            )
            for (const { routed } of expired) expect(routed).toEqual(timedOut())
          }
          expect(queue.length()).toBe(waiting.length)
          expect(queue.length()).toBeLessThanOrEqual(size)
          const counts = queue.counts()
          expect(counts.queued).toBe(counts.served + counts.timedOut + counts.abandoned + waiting.length)
        }
        // Every delivery went to a ticket once, and the ones served went in the order they came.
        const keys = delivered.map(({ key }) => key)
        expect(new Set(keys).size).toBe(keys.length)
        const served = servedKeys().map((key) => Number(key.slice(1)))
        expect(served).toEqual([...served].sort((a, b) => a - b))
      }),
    { fastCheck: { seed: 20261209, numRuns: 200 } },
  )
})
