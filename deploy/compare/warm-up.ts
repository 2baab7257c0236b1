/**
 * Warming up before measuring. A process that has just started runs its request path unoptimised
 * (the JIT has not compiled it yet) and opens its connections on the first requests: whoever is
 * measured first would pay for that. So every contender, and through them every replica, first serves
 * the real request at the scenario's rate, and each contender gets a burst of cheap requests again
 * right before each of its rounds.
 */
import { Pool } from "undici"
import { runOpenLoop } from "./open-loop.ts"

/** Requests that warm a contender's routing path up, and how many are in flight at once. */
export const BURST_REQUESTS = 2_000
const BURST_CONCURRENCY = 16

/** Seconds of the real request at the scenario's rate, per contender, before the first measured round. */
export const STACK_WARM_UP_S = 2
const TIMEOUT_MS = 10_000

/**
 * A burst of cheap requests (`/health`, answered by the replicas at almost no CPU) before a
 * contender is measured: its routing code stays hot and its connections open. NGINX and HAProxy get
 * the same burst.
 */
export const burst = async (origin: string) => {
  const pool = new Pool(origin, { connections: BURST_CONCURRENCY })
  let left = BURST_REQUESTS
  const worker = async () => {
    while (left-- > 0) {
      const response = await pool.request({ path: "/health", method: "GET" }).catch(() => undefined)
      await response?.body.dump()
    }
  }
  await Promise.all(Array.from({ length: BURST_CONCURRENCY }, worker))
  await pool.destroy()
}

/** The real request at the real rate for a few seconds, nothing counted: the whole path gets hot. */
export const warmStack = async (
  origins: ReadonlyArray<string>,
  pathOf: (index: number) => string,
  rateRps: number,
) => {
  for (const origin of origins) await burst(origin)
  await runOpenLoop({
    origins,
    pathOf,
    rateRps,
    durationS: 0,
    warmupS: STACK_WARM_UP_S,
    timeoutMs: TIMEOUT_MS,
  })
}
