/**
 * Polls every agent of `WORKER_NODES` at `http://<node>:METRICS_PORT/metrics/containers`, concurrently,
 * every `CACHE_TTL`, each with `AGENT_TIMEOUT`. A report that fails its Schema counts as a failed poll:
 * that agent's last good report is kept and grows stale, so its replicas fall back by age.
 *
 * A name that resolves to several addresses — Swarm's `tasks.<agent service>` names one per task —
 * stands for an agent at each of them, so a global agent service can be given as one entry.
 */
import { lookup } from "node:dns/promises"
import { isIP } from "node:net"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import { Duration, Effect, Layer, Schedule } from "effect"
import { AgentReports, type NodeReport } from "../../src/AgentReports.ts"
import { LbConfig } from "../../src/Config.ts"
import { describeError } from "../../src/describeError.ts"
import { AgentReport } from "../../src/domain/AgentReport.ts"

export const agentUrl = (node: string, metricsPort: number): string =>
  node.includes(":")
    ? `http://${node}/metrics/containers`
    : `http://${node}:${metricsPort}/metrics/containers`

/** `host[:port]` → one entry per address the host resolves to, or itself when it names one agent. */
const agentsBehind = (node: string): Effect.Effect<ReadonlyArray<string>, "unresolved"> => {
  const [host, port] = node.split(":") as [string, string | undefined]
  if (isIP(host) !== 0) return Effect.succeed([node])
  return Effect.tryPromise({
    try: () => lookup(host, { all: true, family: 4 }),
    catch: () => "unresolved" as const,
  }).pipe(
    Effect.map((addresses) =>
      addresses.length <= 1
        ? [node]
        : addresses.map(({ address }) => (port === undefined ? address : `${address}:${port}`)).sort(),
    ),
  )
}

export const layer = Layer.scoped(
  AgentReports,
  Effect.gen(function* () {
    const config = yield* LbConfig
    const client = (yield* HttpClient.HttpClient).pipe(HttpClient.filterStatusOk)
    const clock = yield* Effect.clock
    const reports = new Map<string, NodeReport>(
      config.workerNodes.map((node) => [
        node,
        { node, report: undefined, receivedAt: 0, lastError: undefined, failures: 0 },
      ]),
    )
    let version = 0

    const poll = (node: string) =>
      client.execute(HttpClientRequest.get(agentUrl(node, config.metricsPort))).pipe(
        Effect.flatMap(HttpClientResponse.schemaBodyJson(AgentReport)),
        Effect.scoped,
        Effect.timeoutFail({
          duration: Duration.millis(config.agentTimeoutMs),
          onTimeout: () => `no answer within ${config.agentTimeoutMs} ms`,
        }),
        Effect.matchEffect({
          onSuccess: (report) =>
            Effect.sync(() => {
              reports.set(node, {
                node,
                report,
                receivedAt: clock.unsafeCurrentTimeMillis(),
                lastError: undefined,
                failures: reports.get(node)?.failures ?? 0,
              })
            }),
          onFailure: (error) => {
            const reason = describeError(error)
            const previous = reports.get(node)
            const firstFailure = previous?.lastError === undefined
            reports.set(node, {
              node,
              report: previous?.report,
              receivedAt: previous?.receivedAt ?? 0,
              lastError: reason,
              failures: (previous?.failures ?? 0) + 1,
            })
            return firstFailure
              ? Effect.logWarning("agent poll failed; its metrics will go stale").pipe(
                  Effect.annotateLogs({ node, reason }),
                )
              : Effect.void
          },
        }),
      )

    // A lookup that fails keeps the node's last expansion: a DNS hiccup must not drop its replicas.
    const expansions = new Map<string, ReadonlyArray<string>>(
      config.workerNodes.map((node) => [node, [node]]),
    )
    const currentAgents = Effect.forEach(
      config.workerNodes,
      (node) =>
        agentsBehind(node).pipe(
          Effect.tap((agents) => Effect.sync(() => expansions.set(node, agents))),
          Effect.orElseSucceed(() => expansions.get(node)!),
        ),
      { concurrency: "unbounded" },
    ).pipe(
      Effect.map((lists) => lists.flat()),
      Effect.tap((agents) =>
        Effect.sync(() => {
          const wanted = new Set(agents)
          for (const node of reports.keys()) if (!wanted.has(node)) reports.delete(node)
        }),
      ),
    )

    yield* currentAgents.pipe(
      Effect.flatMap((agents) => Effect.forEach(agents, poll, { concurrency: "unbounded", discard: true })),
      Effect.tap(() => {
        version++
      }),
      Effect.repeat(Schedule.fixed(Duration.millis(config.cacheTtlMs))),
      Effect.forkScoped,
    )

    return { latest: () => [...reports.values()], version: () => version }
  }),
)
