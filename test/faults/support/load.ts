/**
 * A paced GET load through undici keep-alive connections that keeps one record per request (when it
 * left, when it ended, its status, which replica answered, or its error), so a test can ask what
 * happened in any window of time. Bounded by a duration and a request count; it stops by itself.
 */
import { setTimeout as sleep } from "node:timers/promises"
import { Pool } from "undici"

export interface LoadOptions {
  /** `http://host:port` of the balancer. */
  readonly origin: string
  readonly path: string
  /** Requests per second the load aims at (fewer if the machine cannot keep up). */
  readonly rate: number
  /** Requests in flight at most, one per connection. */
  readonly concurrency: number
  readonly durationMs: number
  /** A ceiling on the requests sent, whatever the rate. */
  readonly maxRequests?: number
  /** The longest a request may take before the client gives up on it. */
  readonly requestTimeoutMs?: number
}

export interface Outcome {
  /** `performance.now()` when the request was sent and when its answer (or error) was complete. */
  readonly sentAt: number
  readonly endedAt: number
  /** 0 when the request failed without an answer. */
  readonly status: number
  /** The `x-replica` header of the answer; "" when none. */
  readonly replica: string
  /** The error's code or message when the request failed without a complete answer; "" otherwise. */
  readonly error: string
}

export interface LoadResult {
  readonly outcomes: ReadonlyArray<Outcome>
  readonly startedAt: number
  readonly endedAt: number
}

export interface Load {
  /** Requests answered or failed so far. */
  readonly completed: () => number
  /** Ends the load early; requests in flight still complete. */
  readonly stop: () => void
  readonly done: Promise<LoadResult>
}

/** Starts the load now; `done` settles when it is over and every request has completed. */
export const startLoad = (options: LoadOptions): Load => {
  const timeoutMs = options.requestTimeoutMs ?? 10_000
  const pool = new Pool(options.origin, {
    connections: options.concurrency,
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
  })
  const outcomes: Array<Outcome> = []
  const maxRequests = options.maxRequests ?? Number.POSITIVE_INFINITY
  const startedAt = performance.now()
  const deadline = startedAt + options.durationMs
  const intervalMs = 1000 / options.rate
  let issued = 0
  let stopped = false

  const worker = async () => {
    for (;;) {
      if (stopped || issued >= maxRequests) return
      const due = startedAt + issued * intervalMs
      issued++
      const wait = due - performance.now()
      if (wait > 1) await sleep(wait)
      const sentAt = performance.now()
      if (sentAt >= deadline || stopped) return
      try {
        const { statusCode, headers, body } = await pool.request({ path: options.path, method: "GET" })
        // Read to the end: a response cut short fails here, not silently.
        await body.arrayBuffer()
        const replica = headers["x-replica"]
        outcomes.push({
          sentAt,
          endedAt: performance.now(),
          status: statusCode,
          replica: typeof replica === "string" ? replica : "",
          error: "",
        })
      } catch (error) {
        const { code, message } = error as { code?: string; message?: string }
        outcomes.push({
          sentAt,
          endedAt: performance.now(),
          status: 0,
          replica: "",
          error: code ?? message ?? String(error),
        })
      }
    }
  }

  const done = Promise.all(Array.from({ length: options.concurrency }, worker)).then(async () => {
    const endedAt = performance.now()
    await pool.close()
    outcomes.sort((a, b) => a.sentAt - b.sentAt)
    return { outcomes, startedAt, endedAt }
  })
  return {
    completed: () => outcomes.length,
    stop: () => {
      stopped = true
    },
    done,
  }
}

/** Requests that did not get a complete 200, described for an assertion message (the first few). */
export const failuresOf = (outcomes: ReadonlyArray<Outcome>, limit = 5) => {
  const failed = outcomes.filter((outcome) => outcome.status !== 200)
  const kinds: Record<string, number> = {}
  for (const outcome of failed) {
    const kind = outcome.error || String(outcome.status)
    kinds[kind] = (kinds[kind] ?? 0) + 1
  }
  return { count: failed.length, kinds, first: failed.slice(0, limit) }
}

/** Requests per second actually achieved. */
export const rateOf = (result: LoadResult): number =>
  result.outcomes.length / ((result.endedAt - result.startedAt) / 1000)
