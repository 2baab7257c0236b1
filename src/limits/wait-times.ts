/**
 * How long queued requests waited, as fixed histogram buckets kept as plain counters on the data plane
 * and written out at scrape time (as the routing-time histogram is).
 */

/** Upper bounds in seconds: a queue is for bursts, so most waits are milliseconds. */
export const QUEUE_WAIT_BOUNDS_SECONDS = [
  0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
] as const

export interface WaitTimes {
  /** Per-bucket counts (not cumulative), the last one above every bound. */
  readonly bucketCounts: ReadonlyArray<number>
  readonly sumSeconds: number
  readonly count: number
}

export const makeWaitTimes = () => {
  const bucketCounts = new Array<number>(QUEUE_WAIT_BOUNDS_SECONDS.length + 1).fill(0)
  let sumSeconds = 0
  let count = 0
  return {
    record: (waitedMs: number) => {
      const seconds = waitedMs / 1000
      let bucket = 0
      while (bucket < QUEUE_WAIT_BOUNDS_SECONDS.length && seconds > QUEUE_WAIT_BOUNDS_SECONDS[bucket]!)
        bucket++
      bucketCounts[bucket]!++
      sumSeconds += seconds
      count++
    },
    read: (): WaitTimes => ({ bucketCounts, sumSeconds, count }),
  }
}
