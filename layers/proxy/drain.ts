/**
 * Graceful shutdown of the listener: stop accepting at once, let what is in flight finish up to
 * `DRAIN_TIMEOUT`, send keep-alive clients away, then cut whatever is left.
 */
import type { Duplex } from "node:stream"
import { Clock, Deferred, Duration, Effect, Exit, Fiber, Option, Schedule } from "effect"
import type { LeaseStoreShape } from "../../src/LeaseStore.ts"

/** How soon a connection whose last response has ended is closed, while draining. */
const IDLE_SWEEP = Duration.millis(50)

/** After the deadline every socket is destroyed; their `close` events follow within moments. */
const CLOSE_GRACE = Duration.seconds(1)

export interface DrainState {
  /** Read once per request: responses sent while it is set carry `Connection: close`. */
  draining: boolean
}

/**
 * What a drain needs of the listening side: node:http's server as it is, or the TLS front with its
 * HTTP/2 sessions (tls-front.ts).
 */
export interface Listener {
  /** Stops accepting at once; calls back once every connection is gone. */
  readonly close: (callback: () => void) => void
  /** Closes the connections with no request under way. */
  readonly closeIdleConnections: () => void
  readonly closeAllConnections: () => void
}

export interface DrainOptions {
  readonly server: Listener
  readonly state: DrainState
  /** Upgraded connections' client sockets, which Node's server no longer tracks. */
  readonly upgraded: ReadonlySet<Duplex>
  /** Every proxied request and upgrade holds a lease: their count is what is in flight. */
  readonly leases: LeaseStoreShape
  readonly timeoutMs: number
}

const drainIn = ({ server, state, upgraded, leases, timeoutMs }: DrainOptions) =>
  Effect.gen(function* () {
    const startedAt = yield* Clock.currentTimeMillis
    const before = leases.totals()
    state.draining = true
    const closed = yield* Deferred.make<void>()
    // Stops listening now (new connections are refused) and calls back once every connection is gone.
    server.close(() => Deferred.unsafeDone(closed, Exit.void))
    server.closeIdleConnections()
    yield* Effect.logInfo("draining connections").pipe(
      Effect.annotateLogs({ in_flight: before.active, upgraded: upgraded.size, timeout_ms: timeoutMs }),
    )
    // A connection whose response was under way when the drain began becomes idle when it ends, and
    // would stay open for CLIENT_KEEPALIVE_TIMEOUT: close it as soon as it does.
    const sweep = Effect.sync(() => server.closeIdleConnections()).pipe(
      Effect.repeat(Schedule.spaced(IDLE_SWEEP)),
      Effect.zipRight(Effect.never),
    )
    const inTime = yield* Deferred.await(closed).pipe(
      Effect.race(sweep),
      Effect.timeoutOption(Duration.millis(timeoutMs)),
      Effect.map(Option.isSome),
    )
    const atEnd = leases.totals()
    const cut = inTime ? 0 : atEnd.active
    if (!inTime) {
      server.closeAllConnections()
      for (const socket of [...upgraded]) socket.destroy()
      yield* Deferred.await(closed).pipe(Effect.timeoutOption(CLOSE_GRACE))
    }
    // In flight when the drain began or arrived during it, less what was cut.
    const finished = before.active + (atEnd.acquired - before.acquired) - cut
    yield* (inTime ? Effect.logInfo : Effect.logWarning)("drain finished").pipe(
      Effect.annotateLogs({
        finished,
        cut,
        deadline_reached: !inTime,
        duration_ms: (yield* Clock.currentTimeMillis) - startedAt,
      }),
    )
  })

/**
 * The listener's finalizer. Finalizers run uninterruptibly, so a timeout there would wait for the very
 * wait it means to cut short: the drain runs in a fiber of its own, interruptible, and is joined.
 */
export const drain = (options: DrainOptions): Effect.Effect<void> =>
  Effect.forkDaemon(Effect.interruptible(drainIn(options))).pipe(Effect.flatMap(Fiber.join))
