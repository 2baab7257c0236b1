/**
 * StatsSource on a Docker Engine (the local socket, or DOCKER_HOST) through dockerode.
 *
 * Every running container has its own watcher fiber: it inspects the container once (for its CPU
 * limits) and then follows one stats stream, turning each frame into a reading. The Engine samples all
 * streamed containers together once a second, and a one-shot request waits for that next tick (up to
 * 1 s, measured on Docker 20.10), so streams give fresh numbers without making `sample` wait, and one
 * slow container only ever delays its own stream. `sample` itself is one list request: it starts
 * watchers for new containers, stops those of vanished ones, and reports each container's latest
 * reading.
 *
 * A container whose stream goes quiet is reported with its last reading (its `sampled_at` says how
 * old) until that is older than `staleAfterMs`; then it is left out and its stream reopened. A
 * container that vanishes mid-sample (404 on inspect or stats) is left out quietly. While the Engine
 * is unreachable `sample` fails with SourceUnavailable; the next sample that reaches it reopens the
 * streams and waits (at most `warmUpMs`) for their first frames, so recovery needs nothing from outside.
 */
import Docker from "dockerode"
import {
  Data,
  Deferred,
  Duration,
  Effect,
  Either,
  Exit,
  Fiber,
  Layer,
  type ParseResult,
  Schema,
  type Scope,
} from "effect"
import { variable } from "../../src/env.ts"
import { AgentConfig } from "../Config.ts"
import { SourceUnavailable, StatsSource, type StatsSourceShape } from "../StatsSource.ts"
import { ContainerLimits, ContainerList, type ContainerSummary, EngineInfo, StatsFrame } from "./engine.ts"
import { containerRow, nextReading, type Reading } from "./formulas.ts"

/** Where the Engine listens: a unix socket, or plain TCP (`tcp://host:port`, no TLS). */
export type DockerConnection =
  | { readonly socketPath: string }
  | { readonly host: string; readonly port: number }

export const defaultSocketPath = "/var/run/docker.sock"

/** DOCKER_HOST as the Docker CLI reads it; unset or empty means the local socket. */
export const connectionFromDockerHost = (
  dockerHost: string | undefined,
): Either.Either<DockerConnection, string> => {
  const value = dockerHost?.trim() ?? ""
  if (value === "") return Either.right({ socketPath: defaultSocketPath })
  if (value.startsWith("unix://")) return Either.right({ socketPath: value.slice(7) || defaultSocketPath })
  const tcp = /^(?:tcp|http):\/\/(\[[0-9a-fA-F:.]+\]|[^:/[\]]+)(?::(\d{1,5}))?\/?$/.exec(value)
  if (tcp !== null && Number(tcp[2] ?? 2375) <= 65535) {
    return Either.right({ host: tcp[1]!.replace(/^\[|\]$/g, ""), port: Number(tcp[2] ?? 2375) })
  }
  return Either.left("unix:///path/to/docker.sock or tcp://host:port (TLS is not supported)")
}

export const describeConnection = (connection: DockerConnection): string =>
  "socketPath" in connection
    ? `unix://${connection.socketPath}`
    : `tcp://${connection.host}:${connection.port}`

export interface DockerSourceOptions {
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

/** What went wrong with one Engine request. */
export interface EngineFailure {
  readonly what: string
  /** The socket error's code (ENOENT, EACCES, ...), or TIMEOUT, or BAD_BODY. */
  readonly code: string | undefined
  /** The Engine's HTTP status when it answered with an error. */
  readonly status: number | undefined
  readonly detail: string
}

/** One failed Engine request, kept inside this module: callers see SourceUnavailable or nothing. */
class EngineRequestFailed extends Data.TaggedError("EngineRequestFailed")<EngineFailure> {}

const failure = (what: string, cause: unknown): EngineRequestFailed => {
  const error = (typeof cause === "object" && cause !== null ? cause : {}) as {
    readonly code?: unknown
    readonly statusCode?: unknown
    readonly json?: { readonly message?: unknown } | null
    readonly message?: unknown
  }
  const engineMessage = typeof error.json?.message === "string" ? error.json.message : undefined
  return new EngineRequestFailed({
    what,
    code: typeof error.code === "string" ? error.code : undefined,
    status: typeof error.statusCode === "number" ? error.statusCode : undefined,
    detail: engineMessage ?? (typeof error.message === "string" ? error.message.trim() : String(cause)),
  })
}

/** One line that says what is wrong and what to look at; the agent prints it and exits 1 at startup. */
export const unavailableReason = (connection: DockerConnection, error: EngineFailure): string => {
  const where = describeConnection(connection)
  const socket = "socketPath" in connection ? connection.socketPath : undefined
  switch (error.code) {
    case "ENOENT":
      return socket === undefined
        ? `cannot reach the Docker Engine at ${where}: ${error.detail}`
        : `no Docker Engine socket at ${socket}: is dockerd running? (DOCKER_HOST selects another Engine)`
    case "EACCES":
    case "EPERM":
      return `permission denied on the Docker Engine socket ${socket ?? where}: run the agent as root or in the docker group`
    case "ECONNREFUSED":
      return `nothing accepts connections at ${where}: is dockerd running?`
    case "EPIPE":
    case "ECONNRESET":
      return `the Docker Engine at ${where} dropped the connection (${error.what}): is it restarting?`
    case "TIMEOUT":
      return `the Docker Engine at ${where} did not answer ${error.what}: ${error.detail}`
    case "BAD_BODY":
      return `the Docker Engine at ${where} answered ${error.what} with something unexpected: ${error.detail}`
  }
  return error.status !== undefined
    ? `the Docker Engine at ${where} refused ${error.what} (HTTP ${error.status}): ${error.detail}`
    : `cannot reach the Docker Engine at ${where} (${error.what}): ${error.detail}`
}

interface Resolved {
  readonly connection: DockerConnection
  readonly pollIntervalMs: number
  readonly staleAfterMs: number
  readonly requestTimeoutMs: number
  readonly warmUpMs: number
}

const resolve = (options: DockerSourceOptions): Either.Either<Resolved, string> => {
  const connection: Either.Either<DockerConnection, string> =
    options.socketPath !== undefined
      ? Either.right({ socketPath: options.socketPath })
      : connectionFromDockerHost(options.dockerHost).pipe(
          Either.mapLeft(
            (expected) => `DOCKER_HOST=${JSON.stringify(options.dockerHost)}: expected ${expected}`,
          ),
        )
  const pollIntervalMs = options.pollIntervalMs ?? 1000
  return Either.map(connection, (connection) => ({
    connection,
    pollIntervalMs,
    staleAfterMs: options.staleAfterMs ?? Math.max(3 * pollIntervalMs, 3000),
    requestTimeoutMs: options.requestTimeoutMs ?? Math.max(2 * pollIntervalMs, 2000),
    warmUpMs: options.warmUpMs ?? 2000,
  }))
}

/** A dockerode client for exactly this connection. */
const client = (connection: DockerConnection): Effect.Effect<Docker, SourceUnavailable> =>
  Effect.try({
    // docker-modem fills unset options from DOCKER_HOST, DOCKER_CERT_PATH and friends (and throws on a
    // malformed DOCKER_HOST): every field is given, undefined where unused, so only `connection` counts.
    try: () =>
      new Docker({
        socketPath: "socketPath" in connection ? connection.socketPath : undefined,
        host: "host" in connection ? connection.host : undefined,
        port: "port" in connection ? connection.port : undefined,
        protocol: "http",
        ca: undefined,
        cert: undefined,
        key: undefined,
        timeout: undefined,
        pathPrefix: undefined,
      } as unknown as Docker.DockerOptions),
    catch: (cause) =>
      new SourceUnavailable({
        reason: `cannot set up a Docker client for ${describeConnection(connection)}: ${String(cause)}`,
      }),
  })

/** Requests to one Engine, each bounded by `timeoutMs` and aborted when interrupted. */
const requester =
  (timeoutMs: number) =>
  (
    what: string,
    run: (signal: AbortSignal) => Promise<unknown>,
  ): Effect.Effect<unknown, EngineRequestFailed> =>
    Effect.tryPromise({ try: run, catch: (cause) => failure(what, cause) }).pipe(
      // Node keeps connections alive: the first request after the Engine restarted may go out on a
      // dead one. Every request here is a GET, so one retry on a fresh connection is safe and gives the
      // real answer (the Engine is back, or why it is not).
      Effect.retry({ times: 1, while: (error) => error.code === "EPIPE" || error.code === "ECONNRESET" }),
      Effect.timeoutFail({
        duration: Duration.millis(timeoutMs),
        onTimeout: () =>
          new EngineRequestFailed({
            what,
            code: "TIMEOUT",
            status: undefined,
            detail: `no answer within ${timeoutMs} ms`,
          }),
      }),
    )

const decode =
  <A, I>(schema: Schema.Schema<A, I>, what: string) =>
  (body: unknown): Effect.Effect<A, EngineRequestFailed> =>
    Schema.decodeUnknown(schema)(body).pipe(
      Effect.mapError(
        (error: ParseResult.ParseError) =>
          new EngineRequestFailed({
            what,
            code: "BAD_BODY",
            status: undefined,
            detail: error.message.split("\n")[0]!,
          }),
      ),
    )

/** dockerode's ping and info honour `abortSignal` like its other calls; only their types lack options. */
type Signalled = (this: Docker, options: { readonly abortSignal: AbortSignal }) => Promise<unknown>

const engineInfo = (docker: Docker, request: ReturnType<typeof requester>) =>
  request("ping", (abortSignal) => (docker.ping as unknown as Signalled).call(docker, { abortSignal })).pipe(
    Effect.zipRight(
      request("info", (abortSignal) => (docker.info as unknown as Signalled).call(docker, { abortSignal })),
    ),
    Effect.flatMap(decode(EngineInfo, "info")),
  )

/** The client, its request function and the Engine's info, once the Engine has answered. */
const connect = (options: DockerSourceOptions) =>
  Effect.gen(function* () {
    const config = yield* Either.match(resolve(options), {
      onLeft: (reason) => Effect.fail(new SourceUnavailable({ reason })),
      onRight: Effect.succeed,
    })
    const docker = yield* client(config.connection)
    const request = requester(config.requestTimeoutMs)
    const info = yield* engineInfo(docker, request).pipe(
      Effect.mapError(
        (error) => new SourceUnavailable({ reason: unavailableReason(config.connection, error) }),
      ),
    )
    return { config, docker, request, info }
  })

/**
 * Whether the Engine answers: ping, then `docker info`. Fails with one line naming the cause (no
 * socket, no permission, nothing listening, no answer) — what the agent prints before exiting 1.
 */
export const checkEngine = (
  options: DockerSourceOptions = {},
): Effect.Effect<EngineInfo, SourceUnavailable> => Effect.map(connect(options), ({ info }) => info)

/** A readable byte stream as dockerode returns it for `stats({ stream: true })`. */
interface FrameStream {
  setEncoding?(encoding: "utf8"): unknown
  on(event: "data", listener: (chunk: string) => void): unknown
  on(event: "end" | "close", listener: () => void): unknown
  on(event: "error", listener: (error: Error) => void): unknown
  removeAllListeners(): unknown
  destroy?(): unknown
}

/** What the source knows about one running container. Replaced, not mutated, when its watcher restarts. */
interface Watched {
  fiber: Fiber.RuntimeFiber<void> | undefined
  limits: ContainerLimits["HostConfig"] | undefined
  reading: Reading | undefined
  /** Agent-clock time the last frame arrived; what a reading's staleness is measured by. */
  readingAt: number
  /** Agent-clock time this watcher started; a stream that never speaks is restarted after staleAfterMs. */
  readonly startedAt: number
  /** Done at this watcher's first frame, or when it ends without one: what warm-up waits for. */
  readonly firstFrame: Deferred.Deferred<void>
}

const decodeFrame = Schema.decodeUnknownEither(Schema.parseJson(StatsFrame))
const isVanished = (error: EngineRequestFailed) => error.status === 404

/**
 * The Docker StatsSource. It checks the Engine first (failing with SourceUnavailable, one line, when it
 * cannot be reached), then opens a stream per running container and waits up to `warmUpMs` for their
 * first frames, so the first sample is complete. Watchers stop when the scope closes.
 */
export const make = (
  options: DockerSourceOptions = {},
): Effect.Effect<StatsSourceShape, SourceUnavailable, Scope.Scope> =>
  Effect.gen(function* () {
    const { config, docker, request, info } = yield* connect(options)
    const clock = yield* Effect.clock
    const scope = yield* Effect.scope
    const watched = new Map<string, Watched>()
    let warmUpPending = true

    const unavailable = (error: EngineRequestFailed) =>
      new SourceUnavailable({ reason: unavailableReason(config.connection, error) })

    /** Follows one stats stream until it ends; each frame replaces the container's reading. */
    const follow = (id: string, entry: Watched) =>
      Effect.acquireUseRelease(
        // Interruptible, unlike a plain acquire, so that its timeout and a restart can end a request
        // the Engine never answers; the abort signal then tears the request down, stream included.
        request(`the stats stream of ${id}`, (abortSignal) =>
          docker.getContainer(id).stats({ stream: true, abortSignal } as { stream: true }),
        ).pipe(
          Effect.map((stream) => stream as FrameStream),
          Effect.interruptible,
        ),
        (stream) =>
          Effect.async<void, EngineRequestFailed>((resume) => {
            let ended = false
            const end = (result: Effect.Effect<void, EngineRequestFailed>) => {
              if (ended) return
              ended = true
              resume(result)
            }
            let pending = ""
            stream.setEncoding?.("utf8")
            stream.on("data", (chunk) => {
              pending += chunk
              let newline = pending.indexOf("\n")
              while (newline >= 0) {
                const line = pending.slice(0, newline).trim()
                pending = pending.slice(newline + 1)
                newline = pending.indexOf("\n")
                if (line === "") continue
                // A frame that does not decode is skipped; the next one a second later will do.
                const frame = decodeFrame(line)
                if (Either.isLeft(frame)) continue
                const reading = nextReading(entry.reading, frame.right)
                if (reading === undefined) continue
                entry.reading = reading
                entry.readingAt = clock.unsafeCurrentTimeMillis()
                Deferred.unsafeDone(entry.firstFrame, Exit.void)
              }
            })
            stream.on("end", () => end(Effect.void))
            stream.on("close", () => end(Effect.void))
            stream.on("error", (error) => end(Effect.fail(failure(`the stats stream of ${id}`, error))))
          }),
        (stream) =>
          Effect.sync(() => {
            stream.removeAllListeners()
            // Swallows the late error a destroyed socket may still emit.
            stream.on("error", () => undefined)
            stream.destroy?.()
          }),
      )

    /** Inspects a container once (its CPU limits), then follows its stream; ends quietly on any failure. */
    const watch = (id: string, entry: Watched) =>
      Effect.gen(function* () {
        if (entry.limits === undefined) {
          const inspected = yield* request(`inspect ${id}`, (abortSignal) =>
            docker.getContainer(id).inspect({ abortSignal } as object),
          ).pipe(Effect.flatMap(decode(ContainerLimits, `inspect ${id}`)))
          entry.limits = inspected.HostConfig
        }
        yield* follow(id, entry)
      }).pipe(
        Effect.catchAll((error) =>
          isVanished(error)
            ? Effect.void
            : Effect.logDebug("container stats stream ended; reopened at the next sample").pipe(
                Effect.annotateLogs({ container: id, reason: error.detail }),
              ),
        ),
        Effect.ensuring(
          Effect.sync(() => {
            entry.fiber = undefined
            Deferred.unsafeDone(entry.firstFrame, Exit.void)
          }),
        ),
      )

    /** (Re)starts a container's watcher, keeping what the previous one learned. */
    const start = (id: string, previous: Watched | undefined, now: number) =>
      Effect.gen(function* () {
        if (previous?.fiber !== undefined) yield* Fiber.interruptFork(previous.fiber)
        const entry: Watched = {
          fiber: undefined,
          limits: previous?.limits,
          reading: previous?.reading,
          readingAt: previous?.readingAt ?? 0,
          startedAt: now,
          firstFrame: yield* Deferred.make<void>(),
        }
        watched.set(id, entry)
        entry.fiber = yield* Effect.forkIn(watch(id, entry), scope)
      })

    const fresh = (entry: Watched | undefined, now: number): entry is Watched & { reading: Reading } =>
      entry?.reading !== undefined && now - entry.readingAt <= config.staleAfterMs

    /** The containers of the last sample, with the newest reading of each that is fresh enough. */
    let lastRunning: ReadonlyArray<ContainerSummary> = []
    const rows = () => {
      const at = clock.unsafeCurrentTimeMillis()
      return lastRunning.flatMap((container) => {
        const entry = watched.get(container.Id)
        return fresh(entry, at) && entry.limits !== undefined
          ? [containerRow(container, entry.limits, entry.reading, info.NCPU)]
          : []
      })
    }

    const sample = Effect.gen(function* () {
      const containers = yield* request("list containers", (abortSignal) =>
        docker.listContainers({ abortSignal }),
      ).pipe(Effect.flatMap(decode(ContainerList, "list containers")), Effect.mapError(unavailable))
      const now = clock.unsafeCurrentTimeMillis()
      const running = containers.filter(
        (container) => container.State === undefined || container.State === "running",
      )
      const ids = new Set(running.map((container) => container.Id))
      for (const [id, entry] of watched) {
        if (ids.has(id)) continue
        watched.delete(id)
        if (entry.fiber !== undefined) yield* Fiber.interruptFork(entry.fiber)
      }
      for (const { Id: id } of running) {
        const entry = watched.get(id)
        const quiet =
          entry !== undefined && now - Math.max(entry.readingAt, entry.startedAt) > config.staleAfterMs
        if (entry === undefined || entry.fiber === undefined || quiet) yield* start(id, entry, now)
      }
      if (warmUpPending) {
        // At startup and after the Engine was unreachable every stream is new: wait (bounded) for
        // their first frames rather than report a partial sample.
        yield* Effect.forEach(
          [...watched.values()].filter((entry) => !fresh(entry, now)),
          (entry) => Deferred.await(entry.firstFrame),
          { concurrency: "unbounded", discard: true },
        ).pipe(Effect.timeout(Duration.millis(config.warmUpMs)), Effect.ignore)
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
    const dockerHost = yield* variable(
      "DOCKER_HOST",
      {
        schema: Schema.String.pipe(Schema.filter((value) => Either.isRight(connectionFromDockerHost(value)))),
        expected: "unix:///path/to/docker.sock or tcp://host:port (TLS is not supported)",
      },
      `unix://${defaultSocketPath}`,
    )
    return yield* make({ dockerHost, pollIntervalMs: config.pollIntervalMs, nodeName: config.nodeName })
  }),
)
