/** The latest report of every monitoring agent in `WORKER_NODES`, polled every `CACHE_TTL`. */
import { Context } from "effect"
import type { AgentReport } from "./domain/AgentReport.ts"

export interface NodeReport {
  /** The node as configured in `WORKER_NODES`. */
  readonly node: string
  /** The last report decoded successfully; kept (and growing stale) while the agent fails. */
  readonly report: AgentReport | undefined
  /** When `report` was received, on this process's clock (epoch ms). */
  readonly receivedAt: number
  /** Why the last poll failed, if it did. */
  readonly lastError: string | undefined
  /** Polls that failed since start: no answer, a bad status, or a report its Schema rejected. */
  readonly failures: number
}

export interface AgentReportsShape {
  readonly latest: () => ReadonlyArray<NodeReport>
  /** Changes after every poll round. */
  readonly version: () => number
}

export class AgentReports extends Context.Tag("swarmguard/AgentReports")<AgentReports, AgentReportsShape>() {}
