/** The monitoring agent's configuration: every environment variable, decoded and checked once at start. */
import { Context, Effect, Layer, ParseResult, Schema } from "effect"
import type { ConfigInvalid } from "../src/domain/ConfigInvalid.ts"
import { boolean, list, nonEmptyText, oneOf, port, seconds, variable } from "../src/env.ts"

export const SourceKind = Schema.Literal("docker", "process")

/** `service@host:port`: a local process found by the socket it listens on, reported as a replica. */
const ProcessTargetStruct = Schema.Struct({
  service: Schema.String,
  host: Schema.String,
  port: Schema.Number,
})

export const ProcessTarget = Schema.transformOrFail(Schema.String, ProcessTargetStruct, {
  strict: true,
  decode: (raw, _, ast) => {
    const match = /^([A-Za-z0-9._-]+)@(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})$/.exec(raw)
    return match === null || Number(match[3]) > 65535
      ? ParseResult.fail(new ParseResult.Type(ast, raw))
      : ParseResult.succeed({ service: match[1]!, host: match[2]!, port: Number(match[3]) })
  },
  encode: (target) => ParseResult.succeed(`${target.service}@${target.host}:${target.port}`),
})

export interface AgentConfigShape {
  readonly apiHost: string
  readonly apiPort: number
  readonly apiEnabled: boolean
  /** Overrides the node name the source reports (the Engine's, or the host name). */
  readonly nodeName: string | undefined
  readonly pollIntervalMs: number
  readonly source: typeof SourceKind.Type
  readonly processTargets: ReadonlyArray<{
    readonly service: string
    readonly host: string
    readonly port: number
  }>
  /** The network name the process source reports its targets' addresses on. */
  readonly processNetwork: string
}

const load: Effect.Effect<AgentConfigShape, ConfigInvalid> = Effect.gen(function* () {
  const nodeName = yield* variable("NODE_NAME", { schema: Schema.String, expected: "a node name" }, "")
  const targets = yield* variable(
    "PROCESS_TARGETS",
    list(ProcessTarget, "comma-separated service@address:port entries, e.g. web-stress@127.0.0.2:8080"),
    "",
  )
  return {
    apiHost: yield* variable("API_HOST", nonEmptyText, "0.0.0.0"),
    apiPort: yield* variable("API_PORT", port, "8082"),
    apiEnabled: yield* variable("API_ENABLED", boolean, "true"),
    nodeName: nodeName === "" ? undefined : nodeName,
    pollIntervalMs: yield* variable("POLL_INTERVAL", seconds, "1"),
    source: yield* variable("AGENT_SOURCE", oneOf(SourceKind), "docker"),
    processTargets: targets,
    processNetwork: yield* variable("PROCESS_NETWORK", nonEmptyText, "swarmguard-net"),
  }
})

export class AgentConfig extends Context.Tag("swarmguard/agent/AgentConfig")<
  AgentConfig,
  AgentConfigShape
>() {
  static readonly layer: Layer.Layer<AgentConfig, ConfigInvalid> = Layer.effect(AgentConfig, load)
}
