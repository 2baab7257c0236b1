/**
 * Each Swarm node's zone, for `LOCALITY=zone`: the value of a node label (`LOCALITY_ZONE_LABEL`,
 * `zone` by default: `docker node update --label-add zone=eu-1a <node>`), read from the manager's
 * Engine every `ROUTES_POLL_INTERVAL`. Node labels live in the cluster's state, which only managers
 * serve, as service labels do. A failed read keeps the zones last read.
 */
import { Duration, Effect } from "effect"
import type { LbConfigShape } from "../../src/Config.ts"
import { managerEngine } from "../manager-engine.ts"

export interface NodeZones {
  /** The zone of the node with this hostname; undefined while unknown. */
  readonly zoneOf: (node: string | undefined) => string | undefined
  /** Changes whenever `zoneOf` may answer differently. */
  readonly version: () => number
}

/** Starts polling in the current scope; the first read is awaited, so locality is right from the start. */
export const pollNodeZones = (config: LbConfigShape) =>
  Effect.gen(function* () {
    const docker = yield* managerEngine(config.dockerHost)
    let zones = new Map<string, string>()
    let version = 0
    const read = Effect.tryPromise((signal) => docker.listNodes({ abortSignal: signal })).pipe(
      Effect.timeout(Duration.seconds(5)),
      Effect.flatMap((nodes) =>
        Effect.sync(() => {
          const next = new Map<string, string>()
          for (const node of nodes) {
            const host = node.Description?.Hostname
            const zone = node.Spec?.Labels?.[config.localityZoneLabel]
            if (host !== undefined && zone !== undefined) next.set(host, zone)
          }
          if (JSON.stringify([...next]) !== JSON.stringify([...zones])) {
            zones = next
            version++
          }
        }),
      ),
      Effect.catchAll((error) =>
        Effect.logWarning("cannot read the nodes' zones; the last ones read stay").pipe(
          Effect.annotateLogs({ engine: config.dockerHost, error: String(error) }),
        ),
      ),
    )
    yield* read
    yield* Effect.sleep(Duration.millis(config.routesPollIntervalMs)).pipe(
      Effect.zipRight(read),
      Effect.forever,
      Effect.forkScoped,
    )
    return {
      zoneOf: (node: string | undefined) => (node === undefined ? undefined : zones.get(node)),
      version: () => version,
    } satisfies NodeZones
  })
