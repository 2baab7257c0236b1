/**
 * The other processes serving the same port (`LB_WORKERS`), as the views that answer for the whole
 * balancer see them. A view serves this process's part under its name, and gathers every worker's
 * part to merge them. Routing state stays in each process: only the views cross processes.
 */
import { Context } from "effect"

export interface Part {
  /** The worker's id (cluster numbering, from 1); 0 when the balancer runs as one process. */
  readonly worker: number
  readonly value: unknown
}

export interface PeersShape {
  /** Registers this process's part of `view`, for whichever worker gathers it. */
  readonly serve: (view: string, part: () => unknown) => void
  /**
   * Every live worker's part of `view`, this one's included, in worker order. A worker that does not
   * answer within a second is left out rather than holding the view.
   */
  readonly gather: (view: string) => Promise<ReadonlyArray<Part>>
}

export class Peers extends Context.Tag("swarmguard/Peers")<Peers, PeersShape>() {}
