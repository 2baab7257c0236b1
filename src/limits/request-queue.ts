/**
 * The queue of requests waiting for a replica below its `REPLICA_MAX_REQUESTS`, as HAProxy queues
 * behind `maxconn`: first come, first served, bounded in length (`QUEUE_SIZE`) and in time
 * (`QUEUE_TIMEOUT`). The Router owns one per route; it serves the head whenever an exchange ends, on
 * whichever replica that freed. A ticket leaves the queue by being served, by timing out, or because
 * its client went away.
 */
import type { Attempt, Refusal, Try } from "../Attempt.ts"
import { makeWaitTimes, type WaitTimes } from "./wait-times.ts"

/** A request waiting in the queue. */
export class Ticket {
  /**
   * Where the request goes once served (an attempt) or refused (`queue_timeout`, or no replica left).
   * The transport sets it as soon as it is handed the ticket; nothing is delivered before a microtask.
   */
  deliver: (routed: Attempt | Refusal) => void = () => {}
  /** Stops the ticket's timer, set by the queue. */
  stopTimer: () => void = () => {}

  constructor(
    readonly tried: Try,
    readonly key: string | undefined,
    /** Epoch ms, on the clock service. */
    readonly enqueuedAt: number,
    private readonly leave: (ticket: Ticket) => void,
  ) {}

  /** The client went away: its place is freed, and nothing will be delivered. */
  cancel(): void {
    this.leave(this)
  }
}

export interface QueueCounts {
  /** Requests that waited, served or not. */
  readonly queued: number
  readonly served: number
  readonly full: number
  readonly timedOut: number
  readonly abandoned: number
}

export interface RequestQueue {
  readonly length: () => number
  /** Queues a request; undefined when the queue is full (counted). */
  readonly enqueue: (tried: Try, key: string | undefined) => Ticket | undefined
  /**
   * Serves tickets in order while `route` finds them a place; stops at the first it cannot
   * (undefined). A refusal is delivered as it is: the ticket leaves the queue either way.
   */
  readonly serve: (route: (ticket: Ticket) => Attempt | Refusal | undefined) => void
  readonly counts: () => QueueCounts
  readonly waitTimes: () => WaitTimes
}

export interface QueueTimer {
  /** Calls `expire` after `ms` unless the returned function is called first. */
  readonly start: (ms: number, expire: () => void) => () => void
  /** Epoch ms. */
  readonly now: () => number
}

export const makeRequestQueue = (
  size: number,
  timeoutMs: number,
  timer: QueueTimer,
  timedOut: () => Refusal,
): RequestQueue => {
  // A Set keeps insertion order and removes any ticket in O(1): FIFO with cancellation.
  const waiting = new Set<Ticket>()
  const waits = makeWaitTimes()
  let queued = 0
  let served = 0
  let full = 0
  let expired = 0
  let abandoned = 0

  const remove = (ticket: Ticket): boolean => {
    if (!waiting.delete(ticket)) return false
    ticket.stopTimer()
    waits.record(timer.now() - ticket.enqueuedAt)
    return true
  }

  const leave = (ticket: Ticket) => {
    if (remove(ticket)) abandoned++
  }

  return {
    length: () => waiting.size,
    enqueue: (tried, key) => {
      if (waiting.size >= size) {
        full++
        return undefined
      }
      const ticket = new Ticket(tried, key, timer.now(), leave)
      waiting.add(ticket)
      queued++
      ticket.stopTimer = timer.start(timeoutMs, () => {
        if (!remove(ticket)) return
        expired++
        ticket.deliver(timedOut())
      })
      return ticket
    },
    serve: (route) => {
      for (const ticket of waiting) {
        const routed = route(ticket)
        if (routed === undefined) return
        remove(ticket)
        served++
        ticket.deliver(routed)
      }
    },
    counts: () => ({ queued, served, full, timedOut: expired, abandoned }),
    waitTimes: waits.read,
  }
}
