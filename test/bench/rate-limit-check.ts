/**
 * The rate limiter's per-request work, timed on its own: the key read from the request, the GCRA step
 * in the in-memory store, and the decision with its header value. Over one client, and over 10,000
 * clients (one key each), with a limit that is never reached.
 */
import type { IncomingMessage } from "node:http"
import { makeMemoryBuckets, makeMemoryStore } from "../../layers/rate-limit-store/memory.ts"
import { makeRateLimiter } from "../../src/limits/rate-limiter.ts"
import { formatTable } from "./report.ts"

const WARMUP_CHECKS = 5_000

const quantile = (sorted: Float64Array, q: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!

const timeChecks = (clients: number, checks: number) => {
  const store = makeMemoryStore(makeMemoryBuckets(() => Date.now()))
  const limiter = makeRateLimiter(
    "bench",
    { count: 1_000_000_000, periodMs: 1_000, burst: 1_000_000_000, key: { _tag: "Ip" } },
    undefined,
    store,
  )
  const requests = Array.from(
    { length: clients },
    (_, i) =>
      ({
        socket: { remoteAddress: `::ffff:10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}` },
        headers: {},
      }) as unknown as IncomingMessage,
  )
  const nanos = new Float64Array(checks)
  for (let i = 0; i < WARMUP_CHECKS + checks; i++) {
    const started = process.hrtime.bigint()
    limiter.check(requests[i % clients]!)
    const elapsed = process.hrtime.bigint() - started
    if (i >= WARMUP_CHECKS) nanos[i - WARMUP_CHECKS] = Number(elapsed)
  }
  nanos.sort()
  return [
    String(clients),
    (quantile(nanos, 0.5) / 1000).toFixed(2),
    (quantile(nanos, 0.99) / 1000).toFixed(2),
  ]
}

export const runRateLimitChecks = (checks: number) => {
  console.log(`\nRate-limit decision (memory store, RATE_LIMIT_KEY=ip), ${checks} checks timed one by one`)
  const rows = [1, 10_000].map((clients) => timeChecks(clients, checks))
  console.log(formatTable(["clients", "p50 µs", "p99 µs"], rows))
}
