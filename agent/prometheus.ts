/** The agent's Prometheus exposition: one gauge family per container figure, filled from the latest sample. */
import { Gauge, Registry } from "prom-client"
import type { SamplerShape } from "./Sampler.ts"

const CONTAINER_LABELS = ["node", "container_id", "container_name", "service_name"] as const

export const makeAgentRegistry = (sampler: SamplerShape, now: () => number): Registry => {
  const registry = new Registry()
  const perContainer = (name: string, help: string, read: (c: ContainerFigures) => number) =>
    new Gauge({
      name,
      help,
      labelNames: CONTAINER_LABELS,
      registers: [registry],
      // Refilled at every scrape, so containers that are gone disappear from the exposition.
      collect() {
        this.reset()
        for (const container of sampler.latest()?.containers ?? []) {
          this.set(
            {
              node: sampler.nodeName,
              container_id: container.container_id,
              container_name: container.container_name,
              service_name: container.service_name,
            },
            read(container),
          )
        }
      },
    })

  perContainer(
    "swarmguard_container_cpu_percent",
    "CPU use, percent of one core (as docker stats)",
    (c) => c.cpu_percent,
  )
  perContainer(
    "swarmguard_container_cpu_allowance_percent",
    "CPU use, percent of the container's CPU allowance",
    (c) => c.cpu_percent_of_limit ?? c.cpu_percent,
  )
  perContainer("swarmguard_container_memory_bytes", "Memory in use (usage minus inactive file cache)", (c) =>
    Math.round(c.memory_mb * 1024 * 1024),
  )
  perContainer(
    "swarmguard_container_memory_percent",
    "Memory in use, percent of the limit",
    (c) => c.memory_percent,
  )
  perContainer(
    "swarmguard_container_network_rx_mbps",
    "Received, megabits per second",
    (c) => c.network_rx_mbps,
  )
  perContainer("swarmguard_container_network_tx_mbps", "Sent, megabits per second", (c) => c.network_tx_mbps)

  new Gauge({
    name: "swarmguard_agent_sample_age_seconds",
    help: "Age of the sample the agent serves",
    registers: [registry],
    collect() {
      const latest = sampler.latest()
      if (latest !== undefined) this.set((now() - latest.completedAt) / 1000)
    },
  })
  new Gauge({
    name: "swarmguard_agent_sample_duration_seconds",
    help: "How long the last sample of every container took",
    registers: [registry],
    collect() {
      const latest = sampler.latest()
      if (latest !== undefined) this.set(latest.durationMs / 1000)
    },
  })
  new Gauge({
    name: "swarmguard_agent_source_up",
    help: "1 while the last sample succeeded, 0 while the source cannot be read",
    registers: [registry],
    collect() {
      const latest = sampler.latest()
      this.set(latest !== undefined && !latest.stale ? 1 : 0)
    },
  })
  return registry
}

type ContainerFigures = NonNullable<ReturnType<SamplerShape["latest"]>>["containers"][number]
