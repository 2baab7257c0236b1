/** Where the agent reaches the Docker Engine: a unix socket or plain TCP, named as DOCKER_HOST names it. */
import { Either, Schema } from "effect"
import { variable } from "../../src/env.ts"
import { SourceUnavailable } from "../StatsSource.ts"

/** Where the Engine listens: a unix socket, or plain TCP (`tcp://host:port`, no TLS). */
export type DockerConnection =
  | { readonly socketPath: string }
  | { readonly host: string; readonly port: number }

const defaultSocketPath = "/var/run/docker.sock"
const expected = "unix:///path/to/docker.sock or tcp://host:port (TLS is not supported)"

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
  return Either.left(expected)
}

export const describeConnection = (connection: DockerConnection): string =>
  "socketPath" in connection
    ? `unix://${connection.socketPath}`
    : `tcp://${connection.host}:${connection.port}`

/** The agent's DOCKER_HOST, checked at startup like its other variables. */
export const dockerHostVariable = variable(
  "DOCKER_HOST",
  {
    schema: Schema.String.pipe(Schema.filter((value) => Either.isRight(connectionFromDockerHost(value)))),
    expected,
  },
  `unix://${defaultSocketPath}`,
)

/** A socket path wins over a DOCKER_HOST value; neither means the local socket. */
export const connectionOf = (options: {
  readonly socketPath?: string | undefined
  readonly dockerHost?: string | undefined
}): Either.Either<DockerConnection, SourceUnavailable> =>
  options.socketPath !== undefined
    ? Either.right({ socketPath: options.socketPath })
    : Either.mapLeft(
        connectionFromDockerHost(options.dockerHost),
        () =>
          new SourceUnavailable({
            reason: `DOCKER_HOST=${JSON.stringify(options.dockerHost)}: expected ${expected}`,
          }),
      )
