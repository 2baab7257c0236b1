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
}

export class StatsSource extends Context.Tag("swarmguard/agent/StatsSource")<
  StatsSource,
  StatsSourceShape
>() {}
