/**
 * Where the agent's numbers come from: the local Docker Engine, or local processes on machines
 * without Docker. One call samples every container (or process) once.
 */
import { Context, Data, type Effect } from "effect"
import type { ContainerMetrics } from "../src/domain/AgentReport.ts"

/** The source cannot be read at all (Engine down, socket missing, permission denied). */
export class SourceUnavailable extends Data.TaggedError("SourceUnavailable")<{ readonly reason: string }> {
  override get message(): string {
    return this.reason
  }
}

export interface StatsSourceShape {
  /** The node's name, reported as the report's `node`. */
  readonly nodeName: string
  /**
   * One sample of every running container: rates are computed against this source's previous
   * sample of the same container, so the first sample of a container reports rates of 0.
   */
  readonly sample: Effect.Effect<ReadonlyArray<ContainerMetrics>, SourceUnavailable>
  /**
   * For sources whose readings arrive on their own (the Engine streams one per container per second):
   * the last sample's containers with their newest readings, from memory, without asking the source.
   * Serving these keeps a reading's age to the source's own interval, not that plus `POLL_INTERVAL`.
   */
  readonly current?: () => ReadonlyArray<ContainerMetrics>
}

export class StatsSource extends Context.Tag("swarmguard/agent/StatsSource")<
  StatsSource,
  StatsSourceShape
>() {}
