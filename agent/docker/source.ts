/** StatsSource on a Docker Engine (the local socket, or DOCKER_HOST): reports what its watchers read. */
import { Deferred, Duration, Effect, Layer, type Scope } from "effect"
import { AgentConfig } from "../Config.ts"
import { type SourceUnavailable, StatsSource, type StatsSourceShape } from "../StatsSource.ts"
import { connectionOf, dockerHostVariable } from "./connection.ts"
import { type ContainerSummary, type EngineInfo, makeEngineClient } from "./engine.ts"
import { containerRow, type Reading } from "./formulas.ts"
import { makeWatchers, type Watched } from "./watcher.ts"

interface DockerSourceOptions {
  /** The Engine's unix socket; wins over `dockerHost`. */
  readonly socketPath?: string | undefined
  /** A DOCKER_HOST value; neither it nor `socketPath` means /var/run/docker.sock. */
  readonly dockerHost?: string | undefined
  /** The agent's POLL_INTERVAL; the Engine's streams tick once a second whatever it is. Default 1 s. */
  readonly pollIntervalMs?: number | undefined
  /** Overrides the Engine's name for the node (`docker info`'s Name, the host's name). */
  readonly nodeName?: string | undefined
  /** How long a quiet container keeps its last reading. Default 3 × POLL_INTERVAL, at least 3 s. */
  readonly staleAfterMs?: number | undefined
  /** Bound on each request (ping, info, list, inspect, opening a stream). Default 2 × POLL_INTERVAL, at least 2 s. */
  readonly requestTimeoutMs?: number | undefined
  /** How long startup and recovery wait for the streams' first frames. Default 2 s (one Engine tick is 1 s). */
  readonly warmUpMs?: number | undefined
}

const pollIntervalMs = (options: DockerSourceOptions) => options.pollIntervalMs ?? 1000

/** The client and the Engine's info, once the Engine has answered. */
const connect = (options: DockerSourceOptions) =>
  Effect.gen(function* () {
    const engine = yield* makeEngineClient(
      yield* connectionOf(options),
      options.requestTimeoutMs ?? Math.max(2 * pollIntervalMs(options), 2000),
    )
    return { engine, info: yield* engine.info }
  })

/**
 * Whether the Engine answers: ping, then `docker info`. Fails with one line naming the cause (no
 * socket, no permission, nothing listening, no answer) — what the agent prints before exiting 1.
 */
export const checkEngine = (
  options: DockerSourceOptions = {},
): Effect.Effect<EngineInfo, SourceUnavailable> => Effect.map(connect(options), ({ info }) => info)

/**
 * The Docker StatsSource. It checks the Engine first (failing with SourceUnavailable, one line, when it
 * cannot be reached), then opens a stream per running container and waits up to `warmUpMs` for their
 * first frames, so the first sample is complete. `sample` itself is one list request: it starts
 * watchers for new containers, stops those of vanished ones, and reports each container's latest
 * reading.
 *
 * A container whose stream goes quiet is reported with its last reading (its `sampled_at` says how
 * old) until that is older than `staleAfterMs`; then it is left out and its stream reopened. A
 * container that vanishes mid-sample (404 on inspect or stats) is left out quietly. While the Engine
 * is unreachable `sample` fails with SourceUnavailable; the next sample that reaches it reopens the
 * streams and waits (at most `warmUpMs`) for their first frames, so recovery needs nothing from outside.
 */
export const make = (
  options: DockerSourceOptions = {},
): Effect.Effect<StatsSourceShape, SourceUnavailable, Scope.Scope> =>
  Effect.gen(function* () {
    const { engine, info } = yield* connect(options)
    const staleAfterMs = options.staleAfterMs ?? Math.max(3 * pollIntervalMs(options), 3000)
    const clock = yield* Effect.clock
    const watchers = yield* makeWatchers(engine)
    let warmUpPending = true

    const fresh = (entry: Watched | undefined, now: number): entry is Watched & { reading: Reading } =>
      entry?.reading !== undefined && now - entry.readingAt <= staleAfterMs

    /** The containers of the last sample, with the newest reading of each that is fresh enough. */
    let lastRunning: ReadonlyArray<ContainerSummary> = []
    const rows = () => {
      const at = clock.unsafeCurrentTimeMillis()
      return lastRunning.flatMap((container) => {
        const entry = watchers.watched.get(container.Id)
        return fresh(entry, at) && entry.limits !== undefined
          ? [containerRow(container, entry.limits, entry.reading, info.NCPU)]
          : []
      })
    }

    const sample = Effect.gen(function* () {
      const containers = yield* engine.containers
      const now = clock.unsafeCurrentTimeMillis()
      const running = containers.filter(
        (container) => container.State === undefined || container.State === "running",
      )
      const ids = new Set(running.map((container) => container.Id))
      for (const id of watchers.watched.keys()) {
        if (!ids.has(id)) yield* watchers.stop(id)
      }
      for (const id of ids) {
        const entry = watchers.watched.get(id)
        const quiet = entry !== undefined && now - Math.max(entry.readingAt, entry.startedAt) > staleAfterMs
        if (!watchers.running(id) || quiet) yield* watchers.start(id)
      }
      if (warmUpPending) {
        // At startup and after the Engine was unreachable every stream is new: wait (bounded) for
        // their first frames rather than report a partial sample.
        yield* Effect.forEach(
          [...watchers.watched.values()].filter((entry) => !fresh(entry, now)),
          (entry) => Deferred.await(entry.firstFrame),
          { concurrency: "unbounded", discard: true },
        ).pipe(Effect.timeout(Duration.millis(options.warmUpMs ?? 2000)), Effect.ignore)
        warmUpPending = false
      }
      lastRunning = running
      return rows()
    }).pipe(
      Effect.tapError(() =>
        Effect.sync(() => {
          warmUpPending = true
        }),
      ),
    )

    // Opens the streams now, so the agent's first sample is already complete.
    yield* sample.pipe(Effect.ignore)
    return { nodeName: options.nodeName ?? info.Name, sample, current: rows }
  })

/** The Docker source from the agent's configuration: DOCKER_HOST, POLL_INTERVAL, NODE_NAME. */
export const layer = Layer.scoped(
  StatsSource,
  Effect.gen(function* () {
    const config = yield* AgentConfig
    const dockerHost = yield* dockerHostVariable
    return yield* make({ dockerHost, pollIntervalMs: config.pollIntervalMs, nodeName: config.nodeName })
  }),
)
