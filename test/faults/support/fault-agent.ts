/**
 * A monitoring agent that misbehaves on demand: it stands in front of the fake agent of
 * test/support/agent.ts (whose reports are right) and passes its reports on, or answers truncated JSON,
 * JSON of the wrong types, or too late.
 */
import { createServer, get } from "node:http"
import type { AddressInfo } from "node:net"
import { setTimeout as sleep } from "node:timers/promises"
import { type FakeAgent, startAgent } from "../../support/agent.ts"
import type { ReplicaServer } from "../../support/replicas.ts"

/**
 * `good`: the fake agent's report as it is. `truncated`: its first half, as a complete HTTP answer
 * (the JSON does not parse). `wrong-types`: well-formed JSON whose fields have the wrong types
 * (numbers as strings, the node as a number). `slow`: the good report, `slowMs` late.
 */
export type AgentMode = "good" | "truncated" | "wrong-types" | "slow"

export interface FaultAgent {
  /** `host:port`, as `WORKER_NODES` names it. */
  readonly node: string
  readonly inner: FakeAgent
  readonly setMode: (mode: AgentMode) => void
  /** Polls received in each mode so far (a slow one counts before it is answered). */
  readonly polled: (mode: AgentMode) => number
  readonly stop: () => Promise<void>
}

const fetchText = (url: string): Promise<string> =>
  new Promise((resolve, reject) => {
    get(url, { agent: false }, (res) => {
      let text = ""
      res.setEncoding("utf8")
      res.on("data", (chunk: string) => {
        text += chunk
      })
      res.on("end", () => resolve(text))
      res.on("error", reject)
    }).on("error", reject)
  })

/** Every number a string, the node a number: the shape is right, the types are not. */
const wrongTypes = (text: string): string => {
  const report = JSON.parse(text) as {
    node: unknown
    timestamp: unknown
    containers: Array<Record<string, unknown>>
  }
  return JSON.stringify({
    ...report,
    node: 42,
    timestamp: String(report.timestamp),
    containers: report.containers.map((container) =>
      Object.fromEntries(
        Object.entries(container).map(([key, value]) => [
          key,
          typeof value === "number" ? `${value}` : value,
        ]),
      ),
    ),
  })
}

/** Listens on 127.0.0.253 (the fake agent takes .254, replicas count up from .2). */
export const startFaultAgent = async (
  replicas: ReadonlyArray<ReplicaServer>,
  { slowMs = 3_000 }: { readonly slowMs?: number } = {},
): Promise<FaultAgent> => {
  const inner = await startAgent(replicas)
  let mode: AgentMode = "good"
  const polled: Record<AgentMode, number> = { good: 0, truncated: 0, "wrong-types": 0, slow: 0 }
  const server = createServer(async (req, res) => {
    if (req.url !== "/metrics/containers") {
      res.writeHead(404).end()
      return
    }
    const current = mode
    polled[current]++
    try {
      const good = await fetchText(`http://${inner.node}/metrics/containers`)
      if (current === "slow") await sleep(slowMs)
      const body =
        current === "truncated"
          ? good.slice(0, Math.floor(good.length / 2))
          : current === "wrong-types"
            ? wrongTypes(good)
            : good
      res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) })
      res.end(body)
    } catch {
      res.destroy()
    }
  })
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject)
    server.listen(0, "127.0.0.253", () => resolve())
  })
  const { port } = server.address() as AddressInfo
  return {
    node: `127.0.0.253:${port}`,
    inner,
    setMode: (next) => {
      mode = next
    },
    polled: (which) => polled[which],
    stop: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })
      await inner.stop()
    },
  }
}
