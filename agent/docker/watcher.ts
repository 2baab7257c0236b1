/** One watcher fiber per running container, keeping its newest reading from the Engine's stats stream. */
import { Deferred, Effect, Either, Exit, FiberMap, Schema, type Scope } from "effect"
import { type ContainerLimits, type EngineClient, StatsFrame } from "./engine.ts"
import { nextReading, type Reading } from "./formulas.ts"

/** What a watcher knows of its container. A restart replaces it, starting from what it learned. */
export interface Watched {
  readonly limits: ContainerLimits["HostConfig"] | undefined
  readonly reading: Reading | undefined
  /** Agent-clock time the last frame arrived; what a reading's staleness is measured by. */
  readonly readingAt: number
  /** Agent-clock time this watcher started; a stream that never speaks is restarted after staleAfterMs. */
  readonly startedAt: number
  /** Done at this watcher's first frame, or when it ends without one: what warm-up waits for. */
  readonly firstFrame: Deferred.Deferred<void>
}

type Entry = { -readonly [K in keyof Watched]: Watched[K] }

interface Watchers {
  /** Every container's last watcher, running or ended, by container id. */
  readonly watched: ReadonlyMap<string, Watched>
  readonly running: (id: string) => boolean
  /** (Re)starts a container's watcher, keeping what the previous one learned. */
  readonly start: (id: string) => Effect.Effect<void>
  /** Stops a container's watcher and forgets the container. */
  readonly stop: (id: string) => Effect.Effect<void>
}

const decodeFrame = Schema.decodeUnknownEither(Schema.parseJson(StatsFrame))

/** Hands each complete, non-blank line of a chunked NDJSON text to `onLine`. */
const ndjsonLines = (onLine: (line: string) => void) => {
  let pending = ""
  return (chunk: string) => {
    pending += chunk
    let newline = pending.indexOf("\n")
    while (newline >= 0) {
      const line = pending.slice(0, newline).trim()
      pending = pending.slice(newline + 1)
      newline = pending.indexOf("\n")
      if (line !== "") onLine(line)
    }
  }
}

/**
 * Each watcher inspects its container once (for its CPU limits), then follows one stats stream. The
 * Engine samples all streamed containers together once a second, and a one-shot request waits for
 * that next tick (up to 1 s, measured on Docker 20.10), so streams give fresh numbers without making
 * a sample wait, and one slow container only ever delays its own stream. Watchers stop with the scope.
 */
export const makeWatchers = (engine: EngineClient): Effect.Effect<Watchers, never, Scope.Scope> =>
  Effect.gen(function* () {
    const clock = yield* Effect.clock
    const fibers = yield* FiberMap.make<string>()
    const watched = new Map<string, Entry>()

    const onFrame = (entry: Entry) => (line: string) => {
      // A frame that does not decode is skipped; the next one a second later will do.
      const frame = decodeFrame(line)
      const reading = Either.isRight(frame) ? nextReading(entry.reading, frame.right) : undefined
      if (reading === undefined) return
      entry.reading = reading
      entry.readingAt = clock.unsafeCurrentTimeMillis()
      Deferred.unsafeDone(entry.firstFrame, Exit.void)
    }

    /** Ends quietly on any failure: the source restarts it at a later sample if its container is still there. */
    const watch = (id: string, entry: Entry) =>
      Effect.gen(function* () {
        if (entry.limits === undefined) entry.limits = yield* engine.limits(id)
        yield* engine.stats(id, ndjsonLines(onFrame(entry)))
      }).pipe(
        Effect.catchAll((error) =>
          // 404: the container is gone, and the next list will say so.
          error.status === 404
            ? Effect.void
            : Effect.logDebug("container stats stream ended; reopened at the next sample").pipe(
                Effect.annotateLogs({ container: id, reason: error.detail }),
              ),
        ),
        Effect.ensuring(Deferred.done(entry.firstFrame, Exit.void)),
      )

    return {
      watched,
      running: (id) => FiberMap.unsafeHas(fibers, id),
      start: (id) =>
        Effect.gen(function* () {
          const previous = watched.get(id)
          const entry: Entry = {
            limits: previous?.limits,
            reading: previous?.reading,
            readingAt: previous?.readingAt ?? 0,
            startedAt: clock.unsafeCurrentTimeMillis(),
            firstFrame: yield* Deferred.make<void>(),
          }
          watched.set(id, entry)
          // Interrupts the previous watcher of `id`, if it still runs.
          yield* FiberMap.run(fibers, id, watch(id, entry))
        }),
      stop: (id) =>
        Effect.suspend(() => {
          watched.delete(id)
          return FiberMap.remove(fibers, id)
        }),
    }
  })
