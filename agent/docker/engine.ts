/** The parts of the Docker Engine API's responses the Docker source reads, as Schemas (extra fields are ignored). */
import { Schema } from "effect"

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
