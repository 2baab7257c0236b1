/**
 * Discovery from the agents' reports: the replicas are the containers of `TARGET_SERVICE`, keyed by
 * container id and addressed by their IP on `LB_NETWORK` at `TARGET_PORT`. A replica stays while its
 * agent's last report lists it, even when that report is stale: health checks decide reachability.
 */
import { Effect, Layer } from "effect"
import { AgentReports } from "../../src/AgentReports.ts"
import { LbConfig } from "../../src/Config.ts"
import { Discovery } from "../../src/Discovery.ts"
import type { ContainerMetrics } from "../../src/domain/AgentReport.ts"
import type { Replica } from "../../src/domain/Replica.ts"

/**
 * The container's address on `network`; a stack deploy prefixes network names with `<stack>_`. An
 * agent speaking only the PRD's format reports no networks: the container's name is then its address,
 * which Swarm's DNS resolves for every task on a network the two share.
 */
export const addressOn = (container: ContainerMetrics, network: string): string | undefined => {
  if (container.networks === undefined) return container.container_name
  const networks = container.networks
  if (networks[network] !== undefined) return networks[network]
  const suffix = `_${network}`
  return Object.entries(networks).find(([name]) => name.endsWith(suffix))?.[1]
}

export const layer = Layer.effect(
  Discovery,
  Effect.gen(function* () {
    const config = yield* LbConfig
    const agents = yield* AgentReports
    let seenAgentsVersion = -1
    let version = 0
    let replicas: ReadonlyArray<Replica> = []

    // Recomputed at most once per poll round; unchanged replicas keep their object so that views
    // cached by identity stay valid.
    const refresh = () => {
      const previous = new Map(replicas.map((replica) => [replica.id, replica]))
      const next: Array<Replica> = []
      for (const { report } of agents.latest()) {
        if (report === undefined) continue
        for (const container of report.containers) {
          if (container.service_name !== config.targetService) continue
          const address = addressOn(container, config.network)
          if (address === undefined) continue
          const origin = `http://${address}:${config.targetPort}`
          const known = previous.get(container.container_id)
          next.push(
            known?.origin === origin
              ? known
              : { id: container.container_id, name: container.container_name, origin, node: report.node },
          )
        }
      }
      const changed =
        next.length !== replicas.length || next.some((replica, index) => replica !== replicas[index])
      if (changed) {
        replicas = next
        version++
      }
    }

    const current = () => {
      if (agents.version() !== seenAgentsVersion) {
        seenAgentsVersion = agents.version()
        refresh()
      }
      return replicas
    }
    return {
      current,
      version: () => {
        current()
        return version
      },
    }
  }),
)
