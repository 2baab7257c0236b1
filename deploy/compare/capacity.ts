/**
 * What a replica actually delivers: a short closed loop that keeps it saturated with the one-unit
 * request and counts its answers per second. The arrival rates assume the nominal capacity
 * (allowance ÷ service cost); this shows whether the machine gave it.
 */
import { Pool } from "undici"

/** Enough requests in flight that the replica never waits for the next one. */
const CONCURRENCY = 4
/** The first second is left out: it fills the queue. */
const SECONDS = 4

export interface Achieved {
  /** Answers per second over each counted second. */
  readonly perSecond: ReadonlyArray<number>
  readonly mean: number
}

export const saturate = async (origin: string, path: string): Promise<Achieved> => {
  const pool = new Pool(origin, { connections: CONCURRENCY })
  const counts = Array.from({ length: SECONDS }, () => 0)
  const started = performance.now()
  const until = started + SECONDS * 1000
  const worker = async () => {
    while (performance.now() < until) {
      const response = await pool.request({ path, method: "GET" }).catch(() => undefined)
      await response?.body.dump()
      const second = Math.floor((performance.now() - started) / 1000)
      if (response?.statusCode === 200 && second < SECONDS) counts[second]!++
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, worker))
  await pool.destroy()
  const perSecond = counts.slice(1)
  return { perSecond, mean: perSecond.reduce((a, b) => a + b, 0) / perSecond.length }
}
