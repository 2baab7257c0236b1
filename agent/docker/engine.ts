/** The Docker Engine's API as the agent calls it through dockerode: requests, responses, failures. */
import Docker from "dockerode"
import { Data, Duration, Effect, Schema } from "effect"
import { SourceUnavailable } from "../StatsSource.ts"
import { type DockerConnection, describeConnection } from "./connection.ts"

// The parts of the responses the agent reads, as Schemas (extra fields are ignored).

const Counter = Schema.Number

const CpuStats = Schema.Struct({
  cpu_usage: Schema.Struct({
    total_usage: Counter,
    /** cgroup v1 only; the CLI falls back to its length when `online_cpus` is missing. */
    percpu_usage: Schema.optional(Schema.NullOr(Schema.Array(Counter))),
  }),
  /** Missing in `precpu_stats` of a one-shot response and of a stream's first frame. */
  system_cpu_usage: Schema.optional(Counter),
  online_cpus: Schema.optional(Schema.Number),
})
export type CpuStats = typeof CpuStats.Type

const InterfaceStats = Schema.Struct({ rx_bytes: Counter, tx_bytes: Counter })
export type InterfaceStats = typeof InterfaceStats.Type

/** One frame of `GET /containers/{id}/stats`. */
export const StatsFrame = Schema.Struct({
  /** RFC 3339 with nanoseconds; `0001-01-01T00:00:00Z` in the empty frames of a stopped container. */
  read: Schema.String,
  cpu_stats: Schema.optional(CpuStats),
  precpu_stats: Schema.optional(CpuStats),
  memory_stats: Schema.optional(
    Schema.Struct({
      usage: Schema.optional(Counter),
      limit: Schema.optional(Counter),
      /** cgroup v1: `total_inactive_file` and friends; cgroup v2: the kernel's `memory.stat` keys. */
      stats: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.Number })),
    }),
  ),
  /** Absent for containers without a network interface (`--network none`). */
  networks: Schema.optional(Schema.Record({ key: Schema.String, value: InterfaceStats })),
})
export type StatsFrame = typeof StatsFrame.Type

/** One entry of `GET /containers/json`: names, labels and addresses are re-read on every sample. */
export const ContainerSummary = Schema.Struct({
  Id: Schema.String,
  Names: Schema.optional(Schema.NullOr(Schema.Array(Schema.String))),
  Labels: Schema.optional(Schema.NullOr(Schema.Record({ key: Schema.String, value: Schema.String }))),
  State: Schema.optional(Schema.String),
  NetworkSettings: Schema.optional(
    Schema.NullOr(
      Schema.Struct({
        Networks: Schema.optional(
          Schema.NullOr(
            Schema.Record({
              key: Schema.String,
              value: Schema.Struct({ IPAddress: Schema.optional(Schema.NullOr(Schema.String)) }),
            }),
          ),
        ),
      }),
    ),
  ),
})
export type ContainerSummary = typeof ContainerSummary.Type

export const ContainerList = Schema.Array(ContainerSummary)

/** The CPU limits of `GET /containers/{id}/json`; the summary in the list does not carry them. */
export const ContainerLimits = Schema.Struct({
  HostConfig: Schema.Struct({
    NanoCpus: Schema.optional(Schema.NullOr(Schema.Number)),
    CpuQuota: Schema.optional(Schema.NullOr(Schema.Number)),
    CpuPeriod: Schema.optional(Schema.NullOr(Schema.Number)),
    CpusetCpus: Schema.optional(Schema.NullOr(Schema.String)),
  }),
})
export type ContainerLimits = typeof ContainerLimits.Type

/** `GET /info`, for the node's name and its CPU count. */
export const EngineInfo = Schema.Struct({
  Name: Schema.String,
  NCPU: Schema.Number,
  ServerVersion: Schema.optional(Schema.String),
  CgroupVersion: Schema.optional(Schema.String),
})
export type EngineInfo = typeof EngineInfo.Type

/** What went wrong with one Engine request. */
interface EngineFailure {
  readonly what: string
  /** The socket error's code (ENOENT, EACCES, ...), or TIMEOUT, or BAD_BODY. */
  readonly code: string | undefined
  /** The Engine's HTTP status when it answered with an error. */
  readonly status: number | undefined
  readonly detail: string
}

/** One failed Engine request: a watcher logs it, or the source reports it as SourceUnavailable. */
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

/** dockerode's ping and info honour `abortSignal` like its other calls; only their types lack options. */
type Signalled = (this: Docker, options: { readonly abortSignal: AbortSignal }) => Promise<unknown>

/** A readable byte stream as dockerode returns it for `stats({ stream: true })`. */
interface StatsStream {
  setEncoding?(encoding: "utf8"): unknown
  on(event: "data", listener: (chunk: string) => void): unknown
  on(event: "end" | "close", listener: () => void): unknown
  on(event: "error", listener: (error: Error) => void): unknown
  removeAllListeners(): unknown
  destroy?(): unknown
}

export interface EngineClient {
  /** Ping, then `docker info`: whether the Engine answers, and its name and CPU count. */
  readonly info: Effect.Effect<EngineInfo, SourceUnavailable>
  readonly containers: Effect.Effect<ReadonlyArray<ContainerSummary>, SourceUnavailable>
  readonly limits: (id: string) => Effect.Effect<ContainerLimits["HostConfig"], EngineRequestFailed>
  /** Feeds the text of a container's stats stream to `onText` until the stream ends; closes it when interrupted. */
  readonly stats: (id: string, onText: (chunk: string) => void) => Effect.Effect<void, EngineRequestFailed>
}

/**
 * A client for exactly this connection, each request bounded by `timeoutMs` and aborted when
 * interrupted. The Engine being unreachable fails `info` and `containers` with SourceUnavailable; a
 * container's own requests fail with EngineRequestFailed, for its watcher to handle.
 */
export const makeEngineClient = (
  connection: DockerConnection,
  timeoutMs: number,
): Effect.Effect<EngineClient, SourceUnavailable> =>
  Effect.gen(function* () {
    const docker = yield* Effect.try({
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

    const request = (what: string, run: (signal: AbortSignal) => Promise<unknown>) =>
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

    const get = <A, I>(
      what: string,
      schema: Schema.Schema<A, I>,
      run: (signal: AbortSignal) => Promise<unknown>,
    ) =>
      request(what, run).pipe(
        Effect.flatMap(Schema.decodeUnknown(schema)),
        Effect.catchTag("ParseError", (error) =>
          Effect.fail(
            new EngineRequestFailed({
              what,
              code: "BAD_BODY",
              status: undefined,
              detail: error.message.split("\n")[0]!,
            }),
          ),
        ),
      )

    const unavailable = (error: EngineRequestFailed) =>
      new SourceUnavailable({ reason: unavailableReason(connection, error) })

    return {
      info: request("ping", (abortSignal) =>
        (docker.ping as unknown as Signalled).call(docker, { abortSignal }),
      ).pipe(
        Effect.zipRight(
          get("info", EngineInfo, (abortSignal) =>
            (docker.info as unknown as Signalled).call(docker, { abortSignal }),
          ),
        ),
        Effect.mapError(unavailable),
      ),
      containers: get("list containers", ContainerList, (abortSignal) =>
        docker.listContainers({ abortSignal }),
      ).pipe(Effect.mapError(unavailable)),
      limits: (id) =>
        get(`inspect ${id}`, ContainerLimits, (abortSignal) =>
          docker.getContainer(id).inspect({ abortSignal } as object),
        ).pipe(Effect.map((inspected) => inspected.HostConfig)),
      stats: (id, onText) =>
        Effect.acquireUseRelease(
          // Interruptible, unlike a plain acquire, so that its timeout and a restart can end a request
          // the Engine never answers; the abort signal then tears the request down, stream included.
          request(`the stats stream of ${id}`, (abortSignal) =>
            docker.getContainer(id).stats({ stream: true, abortSignal } as { stream: true }),
          ).pipe(
            Effect.map((stream) => stream as StatsStream),
            Effect.interruptible,
          ),
          (stream) =>
            Effect.async<void, EngineRequestFailed>((resume) => {
              stream.setEncoding?.("utf8")
              stream.on("data", onText)
              // Whichever comes first ends it; Effect.async ignores the later ones.
              stream.on("end", () => resume(Effect.void))
              stream.on("close", () => resume(Effect.void))
              stream.on("error", (error) => resume(Effect.fail(failure(`the stats stream of ${id}`, error))))
            }),
          (stream) =>
            Effect.sync(() => {
              stream.removeAllListeners()
              // Swallows the late error a destroyed socket may still emit.
              stream.on("error", () => undefined)
              stream.destroy?.()
            }),
        ),
    }
  })
