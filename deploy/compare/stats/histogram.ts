/**
 * Latency histograms as the report keeps them: HdrHistogram in microseconds, 1 µs to one hour at three
 * significant digits, stored in its V2 compressed form as base64 so any HdrHistogram library reads it.
 */
import {
  build,
  decodeFromCompressedBase64,
  encodeIntoCompressedBase64,
  type JsHistogram,
} from "hdr-histogram-js"
import type { Buckets } from "./bootstrap.ts"

const LOWEST_US = 1
const HIGHEST_US = 3_600_000_000
const SIGNIFICANT_DIGITS = 3

/** A histogram of latencies given in milliseconds, recorded in whole microseconds (at least 1). */
export const latencyHistogram = (latenciesMs: Iterable<number>): JsHistogram => {
  const histogram = build({
    lowestDiscernibleValue: LOWEST_US,
    highestTrackableValue: HIGHEST_US,
    numberOfSignificantValueDigits: SIGNIFICANT_DIGITS,
    useWebAssembly: false,
  })
  for (const ms of latenciesMs) histogram.recordValue(Math.max(LOWEST_US, Math.round(ms * 1000)))
  return histogram as JsHistogram
}

export const encodeHistogram = (histogram: JsHistogram): string => encodeIntoCompressedBase64(histogram)

export const decodeHistogram = (encoded: string): JsHistogram =>
  decodeFromCompressedBase64(encoded, 32, false) as JsHistogram

/**
 * The recorded buckets, each as the highest value it stands for: the value HdrHistogram reports for
 * a percentile that falls in it, so quantiles of these buckets are the library's own.
 */
export const bucketsOf = (histogram: JsHistogram): Buckets => {
  const values: Array<number> = []
  const counts: Array<number> = []
  for (let index = 0; index < histogram.countsArrayLength; index++) {
    const count = histogram.getCountAtIndex(index)
    if (count === 0) continue
    values.push(histogram.highestEquivalentValue(histogram.valueFromIndex(index)))
    counts.push(count)
  }
  return { values, counts }
}
