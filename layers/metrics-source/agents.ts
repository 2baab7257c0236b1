/**
 * MetricsSource from the agents' reports, keyed by container id like the agents' Discovery. A
 * sample's age is measured without comparing clocks across nodes: its age at the agent when served,
 * plus the time since this process received it.
 */
import { Effect, Layer } from "effect"
import { AgentReports } from "../../src/AgentReports.ts"
import type { ContainerMetrics } from "../../src/domain/AgentReport.ts"
import type { ReplicaId } from "../../src/domain/Replica.ts"
import { MetricsSource, type ReplicaMetrics } from "../../src/MetricsSource.ts"

/** CPU as a share of the container's allowance, from what the agent gives. */
const cpuOfAllowance = (container: ContainerMetrics): number =>
  container.cpu_percent_of_limit ??
  (container.cpu_limit_cores ? container.cpu_percent / container.cpu_limit_cores : container.cpu_percent)

export const layer = Layer.effect(
  MetricsSource,
  Effect.gen(function* () {
    const agents = yield* AgentReports
    let seenVersion = -1
    let byReplica = new Map<ReplicaId, ReplicaMetrics>()

    const refresh = () => {
      const next = new Map<ReplicaId, ReplicaMetrics>()
      for (const { report, receivedAt } of agents.latest()) {
        if (report === undefined) continue
        const servedAt = report.generated_at ?? report.timestamp * 1000
        for (const container of report.containers) {
          const ageAtAgent =
            container.sampled_at === undefined ? 0 : Math.max(0, servedAt - container.sampled_at)
          next.set(container.container_id, {
            cpuPercent: cpuOfAllowance(container),
            memoryPercent: container.memory_percent,
            networkMbps: container.network_rx_mbps + container.network_tx_mbps,
            sampledAt: receivedAt - ageAtAgent,
          })
        }
      }
      byReplica = next
    }

    return {
      get: (replicaId) => {
        if (agents.version() !== seenVersion) {
          seenVersion = agents.version()
          refresh()
        }
        return byReplica.get(replicaId)
      },
      version: agents.version,
      pollFailures: () => Object.fromEntries(agents.latest().map(({ node, failures }) => [node, failures])),
    }
  }),
)
