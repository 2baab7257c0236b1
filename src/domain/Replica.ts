/** A replica of the target service: one id for it everywhere (leases, health, metrics, stats). */
export type ReplicaId = string

export interface Replica {
  /** The container id when learned from agents, `host:port` when configured statically. */
  readonly id: ReplicaId
  /** Human-readable name: the container name, or the configured URL. */
  readonly name: string
  /** Origin the proxy sends requests to, e.g. `http://10.0.1.7:8080`. */
  readonly origin: string
  /** The node whose agent reported it, when known. */
  readonly node: string | undefined
  /** Its share of traffic relative to its route's other replicas; 1 unless set, 0 drains it. */
  readonly weight?: number
  /** Its own cap on requests in flight, over its route's; unset: the route's. */
  readonly maxRequests?: number | undefined
}
