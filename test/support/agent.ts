/**
 * A fake monitoring agent on loopback: serves `GET /metrics/containers` for the replicas it is given,
 * with loads the test sets, so the balancer discovers replicas and reads metrics exactly as in Swarm.
 */
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { onTestFinished } from "vitest"
import { type Balancer, startBalancer } from "./balancer.ts"
import type { ReplicaServer } from "./replicas.ts"
import { replicasView } from "./views.ts"
import { waitFor } from "./wait.ts"

export interface Load {
  readonly cpuPercent: number
  readonly memoryPercent: number
  readonly networkMbps: number
}

export interface FakeAgent {
  /** `host:port`, as `WORKER_NODES` names it. */
  readonly node: string
  /** The container id the agent reports for `replica`: the balancer's id for it. */
  readonly containerId: (replica: ReplicaServer) => string
  readonly setLoad: (replica: ReplicaServer, load: Load) => void
  /** From now on reports these replicas instead: a service scaled, a task moved to this node. */
  readonly setReplicas: (replicas: ReadonlyArray<ReplicaServer>) => void
  readonly polls: () => number
  readonly stop: () => Promise<void>
}

export const SERVICE = "web-stress"
export const NETWORK = "swarmguard-net"
const IDLE: Load = { cpuPercent: 5, memoryPercent: 10, networkMbps: 0 }

export interface AgentOptions {
  /** 127.0.0.254 unless told (replicas count up from .2). */
  readonly host?: string
  /** A free one unless told. */
  readonly port?: number
  /** The `node` its reports name. */
  readonly node?: string
}

/** Listens on loopback and reports `initial` as containers of `SERVICE`. */
export const startAgent = async (
  initial: ReadonlyArray<ReplicaServer>,
  options: AgentOptions = {},
): Promise<FakeAgent> => {
  let replicas = initial
  const containerId = (replica: ReplicaServer) => `container-${replica.name}`
  const loads = new Map<string, Load>()
  let polls = 0
  const server = createServer((req, res) => {
    if (req.url !== "/metrics/containers") {
      res.writeHead(404).end()
      return
    }
    polls++
    const now = Date.now()
    const report = {
      node: options.node ?? "loopback-node",
      timestamp: Math.floor(now / 1000),
      generated_at: now,
      containers: replicas.map((replica, slot) => {
        const load = loads.get(replica.name) ?? IDLE
        return {
          container_id: containerId(replica),
          container_name: `${SERVICE}.${slot + 1}.${replica.name}`,
          service_name: SERVICE,
          cpu_percent: load.cpuPercent,
          memory_mb: load.memoryPercent * 10,
          memory_percent: load.memoryPercent,
          network_rx_mbps: load.networkMbps / 2,
          network_tx_mbps: load.networkMbps / 2,
          task_slot: slot + 1,
          // A stack deploy prefixes network names with the stack's.
          networks: { [`swarmguard_${NETWORK}`]: replica.host },
          cpu_limit_cores: 1,
          cpu_percent_of_limit: load.cpuPercent,
          sampled_at: now,
        }
      }),
    }
    const body = JSON.stringify(report)
    res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) })
    res.end(body)
  })
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject)
    server.listen(options.port ?? 0, options.host ?? "127.0.0.254", () => resolve())
  })
  const { address, port } = server.address() as AddressInfo
  let running = true
  return {
    node: `${address}:${port}`,
    containerId,
    setLoad: (replica, load) => {
      loads.set(replica.name, load)
    },
    setReplicas: (next) => {
      replicas = next
    },
    polls: () => polls,
    stop: async () => {
      if (!running) return
      running = false
      await new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })
    },
  }
}

/**
 * A balancer that discovers `replicas` (all on one port) through the agent at `node`, polling it
 * every 0.2 s; it closes when the test finishes, and is returned once every replica has fresh metrics.
 */
export const startBalancerOverAgent = async (
  node: string,
  replicas: ReadonlyArray<ReplicaServer>,
  env: Record<string, string>,
): Promise<Balancer> => {
  const lb = await startBalancer({
    REPLICAS: "",
    WORKER_NODES: node,
    TARGET_SERVICE: SERVICE,
    TARGET_PORT: String(replicas[0]!.port),
    LB_NETWORK: NETWORK,
    CACHE_TTL: "0.2",
    AGENT_TIMEOUT: "1",
    ...env,
  })
  onTestFinished(() => lb.close())
  await waitFor(`the balancer to discover ${replicas.length} replicas with fresh metrics`, async () => {
    const rows = await replicasView(lb.url)
    return rows.length === replicas.length && rows.every((row) => row.metrics?.fresh) ? rows : undefined
  })
  return lb
}
