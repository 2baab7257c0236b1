/**
 * Agents → discovery → metrics → score: one replica id everywhere, so an agent's numbers really decide
 * the route (an earlier balancer keyed metrics and replicas differently and silently fell back forever).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, TestClock } from "effect"
import { layer as agentReportsLayer } from "../../layers/agent-reports/http.ts"
import { layer as agentDiscoveryLayer } from "../../layers/discovery/agents.ts"
import { layer as agentMetricsLayer } from "../../layers/metrics-source/agents.ts"
import { selectorLayers } from "../../layers/selector/registry.ts"
import { Discovery } from "../../src/Discovery.ts"
import type { AgentReport, ContainerMetrics } from "../../src/domain/AgentReport.ts"
import { MetricsSource } from "../../src/MetricsSource.ts"
import { ReplicaPool } from "../../src/ReplicaPool.ts"
import { Selector } from "../../src/Selector.ts"
import { configLayer, fakeHttp } from "./fakes.ts"

const container = (id: string, cpu: number, ip: string, service = "web-stress"): ContainerMetrics => ({
  container_id: id,
  container_name: `${service}.${id}`,
  service_name: service,
  cpu_percent: cpu,
  memory_mb: 64,
  memory_percent: 10,
  network_rx_mbps: 1,
  network_tx_mbps: 1,
  task_id: `task-${id}`,
  task_slot: 1,
  // Deployed with `docker stack deploy`, the network carries the stack's prefix.
  networks: { "swarmguard_swarmguard-net": ip, ingress: "10.0.0.9" },
  cpu_limit_cores: 1,
  cpu_percent_of_limit: cpu,
  sampled_at: 0,
})

const report = (node: string, containers: Array<ContainerMetrics>): AgentReport => ({
  node,
  timestamp: 0,
  generated_at: 0,
  containers,
})

const setup = () => {
  const http = fakeHttp()
  http.routes.set("http://127.0.0.2:8082/metrics/containers", {
    status: 200,
    body: report("worker-1", [container("aaa", 80, "10.0.1.2"), container("db1", 5, "10.0.1.3", "postgres")]),
  })
  http.routes.set("http://127.0.0.3:9999/metrics/containers", {
    status: 200,
    body: report("worker-2", [container("bbb", 20, "10.0.1.4"), container("ccc", 60, "10.0.1.5")]),
  })
  const layer = Layer.merge(selectorLayers.metrics, ReplicaPool.layer).pipe(
    Layer.provideMerge(Layer.merge(agentDiscoveryLayer, agentMetricsLayer)),
    Layer.provide(agentReportsLayer),
    Layer.provide(http.layer),
    Layer.provideMerge(configLayer({ WORKER_NODES: "127.0.0.2, 127.0.0.3:9999", CACHE_TTL: "1" })),
  )
  return { http, layer }
}

/** The metrics selector's choice among the pool's candidates. */
const pick = Effect.gen(function* () {
  return (yield* Selector).pick((yield* ReplicaPool).candidates())
})

describe("agents", () => {
  it.effect("discover the target service's containers by id, at their address on LB_NETWORK", () => {
    const { layer } = setup()
    return Effect.gen(function* () {
      yield* TestClock.adjust("1 second")
      const replicas = (yield* Discovery).current()
      expect(replicas).toEqual([
        { id: "aaa", name: "web-stress.aaa", origin: "http://10.0.1.2:8080", node: "worker-1" },
        { id: "bbb", name: "web-stress.bbb", origin: "http://10.0.1.4:8080", node: "worker-2" },
        { id: "ccc", name: "web-stress.ccc", origin: "http://10.0.1.5:8080", node: "worker-2" },
      ])
    }).pipe(Effect.provide(layer))
  })

  it.effect("an agent that speaks only the PRD's format yields replicas addressed by container name", () => {
    const { http, layer } = setup()
    return Effect.gen(function* () {
      // The PRD's example report, field for field: no networks, no task, no allowance, no times.
      http.routes.set("http://127.0.0.3:9999/metrics/containers", {
        status: 200,
        body: {
          node: "worker-2",
          timestamp: 1_700_000_000,
          containers: [
            {
              container_id: "abc123",
              container_name: "web-stress.1.xyz",
              service_name: "web-stress",
              cpu_percent: 45.2,
              memory_mb: 128.5,
              memory_percent: 12.8,
              network_rx_mbps: 15.3,
              network_tx_mbps: 12.1,
            },
          ],
        },
      })
      yield* TestClock.adjust("1 second")
      expect((yield* Discovery).current()).toEqual([
        { id: "aaa", name: "web-stress.aaa", origin: "http://10.0.1.2:8080", node: "worker-1" },
        { id: "abc123", name: "web-stress.1.xyz", origin: "http://web-stress.1.xyz:8080", node: "worker-2" },
      ])
      expect((yield* MetricsSource).get("abc123")?.cpuPercent).toBe(45.2)
    }).pipe(Effect.provide(layer))
  })

  it.effect("their metrics reach the score: the least loaded discovered replica is chosen", () => {
    const { layer } = setup()
    return Effect.gen(function* () {
      yield* TestClock.adjust("1 second")
      const decision = (yield* pick)!
      expect(decision.endpoint.id).toBe("bbb")
      expect(decision).toMatchObject({ freshMetrics: true, fallback: false })
      expect((yield* MetricsSource).get("bbb")?.cpuPercent).toBe(20)
      expect(decision.endpoint.metrics?.cpuPercent).toBe(20)
    }).pipe(Effect.provide(layer))
  })

  it.effect(
    "a garbage report is rejected by its Schema: that agent's metrics age out, its replicas stay",
    () => {
      const { http, layer } = setup()
      return Effect.gen(function* () {
        yield* TestClock.adjust("1 second")
        http.routes.set("http://127.0.0.3:9999/metrics/containers", {
          status: 200,
          body: { node: "worker-2", timestamp: "yesterday", containers: [{ container_id: 7 }] },
        })
        // The last good report arrived at 1 s; METRICS_MAX_AGE defaults to 3 × CACHE_TTL.
        yield* TestClock.adjust("3 seconds")
        expect(yield* pick).toMatchObject({ fallback: false })
        yield* TestClock.adjust("1 millis")
        const replicas = (yield* ReplicaPool).endpoints()
        expect(replicas.map((endpoint) => endpoint.id)).toEqual(["aaa", "bbb", "ccc"])
        expect(yield* pick).toMatchObject({ fallback: true, freshMetrics: false })
      }).pipe(Effect.provide(layer))
    },
  )

  it.effect("an agent that stops answering keeps its last replicas; a recovered one refreshes them", () => {
    const { http, layer } = setup()
    return Effect.gen(function* () {
      yield* TestClock.adjust("1 second")
      const discovery = yield* Discovery
      http.routes.delete("http://127.0.0.2:8082/metrics/containers")
      yield* TestClock.adjust("5 seconds")
      expect(discovery.current().map((replica) => replica.id)).toEqual(["aaa", "bbb", "ccc"])
      http.routes.set("http://127.0.0.2:8082/metrics/containers", {
        status: 200,
        body: report("worker-1", []),
      })
      yield* TestClock.adjust("1 second")
      expect(discovery.current().map((replica) => replica.id)).toEqual(["bbb", "ccc"])
    }).pipe(Effect.provide(layer))
  })
})
