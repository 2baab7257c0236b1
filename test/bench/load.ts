/** One measurement: an autocannon warm-up, then a timed run whose latencies are kept in microseconds. */
import autocannon from "autocannon"
import { build } from "hdr-histogram-js"

export interface LoadOptions {
  readonly connections: number
  readonly durationS: number
  readonly warmupS: number
}

export interface Measurement {
  readonly requests: number
  readonly requestsPerSecond: number
  readonly p50Ms: number
  readonly p99Ms: number
  /** Connection errors and timeouts seen by autocannon. */
  readonly errors: number
  readonly non2xx: number
}

/** Opens the connections and lets the JIT settle before a measurement; its numbers are thrown away. */
export const warmUp = async (url: string, options: LoadOptions): Promise<void> => {
  if (options.warmupS > 0) {
    await autocannon({ url, connections: options.connections, duration: options.warmupS })
  }
}

/** Drives `url` and reports; rejects only if autocannon itself fails. */
export const measure = async (url: string, options: LoadOptions): Promise<Measurement> => {
  // autocannon's own histogram has 1 ms resolution, too coarse for loopback latencies.
  const latencies = build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 60_000_000,
    numberOfSignificantValueDigits: 3,
  })
  const run = autocannon({ url, connections: options.connections, duration: options.durationS })
  run.on("response", (_client, _status, _bytes, responseTimeMs) => {
    latencies.recordValue(Math.max(1, Math.round(responseTimeMs * 1000)))
  })
  const result = await run
  const measurement: Measurement = {
    requests: result.requests.total,
    requestsPerSecond: result.duration > 0 ? result.requests.total / result.duration : 0,
    p50Ms: latencies.getValueAtPercentile(50) / 1000,
    p99Ms: latencies.getValueAtPercentile(99) / 1000,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
  }
  latencies.destroy()
  return measurement
}
