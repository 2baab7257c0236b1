/** Reading the balancer while a fault is on: when a replica left rotation, what the views say, figures. */
import { setTimeout as sleep } from "node:timers/promises"
import type { MetricsJson, ReplicaRow } from "../../support/views.ts"
import { metricsView, replicasView } from "../../support/views.ts"

/** A `/_lb/replicas` row with the fields passive ejection adds (absent until it lands). */
export type FaultRow = Omit<ReplicaRow, "ejected" | "ejections"> & {
  readonly ejected?: boolean
  readonly ejections?: number
}

/** `GET /metrics` with the counters the fault handling adds (absent until it lands). */
export type FaultMetrics = Omit<MetricsJson, "ejections" | "agent_poll_failures"> & {
  readonly retries_denied?: number
  readonly ejections?: number
  readonly agent_poll_failures?: Record<string, number>
}

export const rowsOf = async (lb: string) => (await replicasView(lb)) as ReadonlyArray<FaultRow>

export const rowOf = async (lb: string, id: string): Promise<FaultRow> => {
  const row = (await rowsOf(lb)).find((candidate) => candidate.id === id)
  if (row === undefined) throw new Error(`/_lb/replicas does not list ${id}`)
  return row
}

export const metricsOf = async (lb: string) => (await metricsView(lb)) as FaultMetrics

/** Out of rotation: marked down by health checks, or ejected by the proxy's outlier detection. */
export const outOfRotation = (row: FaultRow): boolean => !row.healthy || row.ejected === true

export interface Sample {
  /** `performance.now()` when the answer came. */
  readonly at: number
  readonly row: FaultRow
}

export interface Track {
  /** Stops polling and returns every sample taken, oldest first. */
  readonly stop: () => Promise<ReadonlyArray<Sample>>
}

/**
 * Polls `/_lb/replicas` every `intervalMs` for the row of `id` until stopped (or `maxMs`, so it ends by
 * itself), keeping every answer: when the replica left rotation and when its picks stopped growing.
 */
export const trackRow = (
  lb: string,
  id: string,
  { intervalMs = 20, maxMs = 30_000 }: { readonly intervalMs?: number; readonly maxMs?: number } = {},
): Track => {
  const samples: Array<Sample> = []
  const deadline = performance.now() + maxMs
  let stopped = false
  const loop = (async () => {
    while (!stopped && performance.now() < deadline) {
      const row = await rowOf(lb, id).catch(() => undefined)
      if (row !== undefined) samples.push({ at: performance.now(), row })
      await sleep(intervalMs)
    }
  })()
  return {
    stop: async () => {
      stopped = true
      await loop
      return samples
    },
  }
}

/** What the samples say about the replica after `since`: when it left rotation, when picks stopped. */
export const rotationAfter = (samples: ReadonlyArray<Sample>, since: number) => {
  const after = samples.filter((sample) => sample.at >= since)
  const out = after.find((sample) => outOfRotation(sample.row))
  const last = after.at(-1)
  // The first sample already showing the final count: picks grew no more from then on.
  const picksSettled = last && after.find((sample) => sample.row.picks === last.row.picks)
  return {
    /** The first sample out of rotation. */
    out,
    /** Picks counted after `out` was seen (0 when out means out). */
    picksAfterOut: out && last ? last.row.picks - out.row.picks : undefined,
    /** ms from `since` to the first sample whose picks never grew again. */
    picksStoppedAfterMs: picksSettled ? picksSettled.at - since : undefined,
    samples: after.length,
  }
}

/** Sleeps until `offsetMs` after `origin` (a `performance.now()`): when a fault is scheduled in a load. */
export const at = async (origin: number, offsetMs: number): Promise<void> => {
  const wait = origin + offsetMs - performance.now()
  if (wait > 0) await sleep(wait)
}

export const seconds = (ms: number): string => (ms / 1000).toFixed(2)

export const percent = (share: number): string => `${(share * 100).toFixed(3)}%`

/** The suite's figures, one line per case, easy to find and quote. */
export const report = (line: string): void => {
  console.log(`[faults] ${line}`)
}
