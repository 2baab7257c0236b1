/**
 * The `LOG_EVERY_N_REQUESTS` summary line. At tens of thousands of requests a second, a line every
 * 100 requests would be hundreds of lines a second, each a stats snapshot and a log fiber: measured,
 * about a tenth of the data plane's CPU. So the line comes every N requests but at most once a
 * second, which keeps the PRD's purpose (a steady pulse in the log, no spam) at any rate.
 */
import type { Clock } from "effect"
import type { RoutingStatsShape } from "./RoutingStats.ts"

const MIN_INTERVAL_MS = 1000

/** Returns what the data plane calls with each request's number; it logs when a summary is due. */
export const makeSummaryLog = (
  everyNRequests: number,
  stats: RoutingStatsShape,
  clock: Clock.Clock,
  log: (message: string, annotations: Record<string, unknown>) => void,
): ((requestNumber: number) => void) => {
  if (everyNRequests <= 0) return () => {}
  let lastAt = Number.NEGATIVE_INFINITY
  return (requestNumber) => {
    if (requestNumber % everyNRequests !== 0) return
    const now = clock.unsafeCurrentTimeMillis()
    if (now - lastAt < MIN_INTERVAL_MS) return
    lastAt = now
    const { total_requests, requests_per_second, routing_decisions } = stats.snapshot()
    log("routing summary", { total_requests, requests_per_second, routing_decisions })
  }
}
