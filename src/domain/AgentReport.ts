/**
 * The monitoring agent's `GET /metrics/containers` report. The agent encodes with these schemas and
 * the balancer decodes with them, so the two can never disagree about a field.
 */
import { Schema } from "effect"

export const ContainerMetrics = Schema.Struct({
  container_id: Schema.String,
  container_name: Schema.String,
  service_name: Schema.String,
  cpu_percent: Schema.Number,
  memory_mb: Schema.Number,
  memory_percent: Schema.Number,
  network_rx_mbps: Schema.Number,
  network_tx_mbps: Schema.Number,
  /** Swarm task id and slot, from the container's labels. */
  task_id: Schema.optional(Schema.NullOr(Schema.String)),
  task_slot: Schema.optional(Schema.NullOr(Schema.Number)),
  /** Network name → the container's IPv4 address on it. */
  networks: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.String })),
  /** CPU allowance in cores: the container's limit, or the host's cores when unlimited. */
  cpu_limit_cores: Schema.optional(Schema.Number),
  /** CPU use as a percentage of that allowance (100 = the container uses all it may). */
  cpu_percent_of_limit: Schema.optional(Schema.Number),
  /** When the sample was taken, in epoch milliseconds on the agent's clock. */
  sampled_at: Schema.optional(Schema.Number),
})
export type ContainerMetrics = typeof ContainerMetrics.Type

export const AgentReport = Schema.Struct({
  node: Schema.String,
  /** Epoch seconds when the report was served, as in the PRD. */
  timestamp: Schema.Number,
  /** Epoch milliseconds when the report was served; with `sampled_at` it gives a sample's age. */
  generated_at: Schema.optional(Schema.Number),
  containers: Schema.Array(ContainerMetrics),
  /** True while the agent cannot read its source and serves its last sample. */
  stale: Schema.optional(Schema.Boolean),
})
export type AgentReport = typeof AgentReport.Type
