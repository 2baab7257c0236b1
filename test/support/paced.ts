/**
 * Open-loop traffic at a fixed rate for the rate-limit tests: request i leaves at start + i / rate on an
 * absolute schedule, whatever the answers before it, so the offered rate does not bend to the
 * balancer's. Every answer's status and headers are kept; the run ends by itself after `durationMs`.
 */
import type { IncomingHttpHeaders } from "node:http"
import { setTimeout as sleep } from "node:timers/promises"
import { Pool } from "undici"

export interface PacedAnswer {
  /** When it was sent, in ms from the start. */
  readonly sentAtMs: number
  /** 0 when the request failed without an answer. */
  readonly status: number
  readonly headers: IncomingHttpHeaders
  /** The body, for answers other than 200; the error, for requests without an answer. */
  readonly detail: string
}

export interface PacedOptions {
  /** Requests per second. */
  readonly rate: number
  readonly durationMs: number
  readonly path?: string
  readonly headers?: Record<string, string>
  /** Connections kept open; enough for the rate times the slowest answer. */
  readonly connections?: number
}

export interface PacedRun {
  readonly answers: ReadonlyArray<PacedAnswer>
  readonly count: (status: number) => number
}

export const paced = async (origin: string, options: PacedOptions): Promise<PacedRun> => {
  const pool = new Pool(origin, { connections: options.connections ?? 32 })
  const total = Math.round((options.rate * options.durationMs) / 1000)
  const answers: Array<PacedAnswer> = []
  const inFlight: Array<Promise<void>> = []
  const started = performance.now()
  const send = async (sentAtMs: number) => {
    try {
      const { statusCode, headers, body } = await pool.request({
        path: options.path ?? "/whoami",
        method: "GET",
        headers: options.headers ?? {},
      })
      const text = await body.text()
      answers.push({ sentAtMs, status: statusCode, headers, detail: statusCode === 200 ? "" : text })
    } catch (error) {
      answers.push({ sentAtMs, status: 0, headers: {}, detail: String(error) })
    }
  }
  try {
    for (let i = 0; i < total; i++) {
      const due = (i * 1000) / options.rate
      const wait = due - (performance.now() - started)
      if (wait > 1) await sleep(wait)
      inFlight.push(send(performance.now() - started))
    }
    await Promise.all(inFlight)
  } finally {
    await pool.close()
  }
  return { answers, count: (status) => answers.filter((answer) => answer.status === status).length }
}
