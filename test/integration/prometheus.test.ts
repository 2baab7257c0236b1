/**
 * The Grafana dashboard against real data: Debian's Prometheus (installed when missing) scrapes two
 * balancers (round-robin and lease, so the comparison panels have both sides) and the real monitoring
 * agent reading the replicas through /proc, on loopback; after a short load every PromQL expression
 * of deploy/grafana's dashboard must return a sample with a number in it.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, it, onTestFinished } from "vitest"
import { type Child, startChild, startProgram } from "../../src/process/child.ts"
import { freePorts } from "../../src/process/ports.ts"
import { untilAnswers } from "../../src/process/wait.ts"
import { startBalancer } from "../support/balancer.ts"
import { ensureDebianPackage } from "../support/debian.ts"
import { json, request } from "../support/http.ts"
import { startReplicas } from "../support/replicas.ts"
import { replicasView } from "../support/views.ts"
import { waitFor, within } from "../support/wait.ts"

const DASHBOARD = fileURLToPath(
  new URL("../../deploy/grafana/dashboards/intelligent-load-balancer.json", import.meta.url),
)
const SERVICE = "web-stress"
const INSTALL_MS = 300_000
const LOAD_MS = 5_000
const MIN_LOAD = 50

/**
 * Grafana's own variables, as a short dashboard time range would set them: rates over the last
 * minute cover the whole load, which has ended by the time the queries run.
 */
const GRAFANA_VARIABLES: Record<string, string> = {
  $__rate_interval: "1m",
  $__interval: "5s",
  $__range: "5m",
}

interface Panel {
  readonly title?: string
  readonly targets?: ReadonlyArray<{ readonly expr?: string }>
  readonly panels?: ReadonlyArray<Panel>
}

/** Every panel's PromQL, rows' nested panels included, with Grafana's variables substituted. */
const dashboardQueries = async (): Promise<Array<{ panel: string; expr: string }>> => {
  const dashboard = JSON.parse(await readFile(DASHBOARD, "utf8")) as { panels: ReadonlyArray<Panel> }
  const queries: Array<{ panel: string; expr: string }> = []
  const visit = (panel: Panel) => {
    for (const target of panel.targets ?? []) {
      if (target.expr === undefined) continue
      const expr = target.expr.replace(/\$__\w+/g, (name) => {
        const value = GRAFANA_VARIABLES[name]
        if (value === undefined) throw new Error(`no value for Grafana's ${name} in ${panel.title}`)
        return value
      })
      queries.push({ panel: panel.title ?? "(untitled)", expr })
    }
    for (const nested of panel.panels ?? []) visit(nested)
  }
  for (const panel of dashboard.panels) visit(panel)
  return queries
}

/** SIGTERM, then SIGKILL if the child is still there after a grace period. */
const stop = async (child: Child) => {
  child.process.kill("SIGTERM")
  try {
    await within(`${child.name} to exit`, 10_000, child.exited)
  } catch {
    child.process.kill("SIGKILL")
    await child.exited
  }
}

/** Children outlive a test runner killed outright unless they are killed with it. */
const killOnExit = (child: Child) => {
  const guard = () => child.process.kill("SIGKILL")
  process.once("exit", guard)
  void child.exited.then(() => process.off("exit", guard))
}

interface QueryAnswer {
  readonly status: string
  readonly data: { readonly result: ReadonlyArray<{ readonly value: [number, string] }> }
}

describe("Prometheus and the Grafana dashboard", () => {
  it(
    "every PromQL expression of the dashboard returns numbers after a short load",
    async () => {
      const prometheus = await ensureDebianPackage("prometheus", "prometheus", { timeoutMs: INSTALL_MS })
      const queries = await dashboardQueries()
      expect(queries.length).toBeGreaterThanOrEqual(4)

      const set = await startReplicas(3, { samePort: true })
      onTestFinished(() => set.stopAll())
      const [agentPort, prometheusPort] = (await freePorts("127.0.0.1", 2)) as [number, number]
      const agent = startChild("agent", "agent/main.ts", {
        AGENT_SOURCE: "process",
        PROCESS_TARGETS: set.replicas
          .map((replica) => `${SERVICE}@${replica.host}:${replica.port}`)
          .join(","),
        API_HOST: "127.0.0.1",
        API_PORT: String(agentPort),
        NODE_NAME: "loopback",
      })
      killOnExit(agent)
      onTestFinished(() => stop(agent))
      await untilAnswers(agent, `http://127.0.0.1:${agentPort}/metrics/containers`, 30_000)

      const balancers = await Promise.all(
        ["round-robin", "lease"].map(async (algorithm) => {
          const lb = await startBalancer({
            LB_ALGORITHM: algorithm,
            REPLICAS: "",
            WORKER_NODES: `127.0.0.1:${agentPort}`,
            TARGET_SERVICE: SERVICE,
            TARGET_PORT: String(set.replicas[0]!.port),
            CACHE_TTL: "0.5",
          })
          onTestFinished(() => lb.close())
          return lb
        }),
      )
      for (const lb of balancers) {
        await waitFor(
          "the balancer to discover the three replicas with their metrics",
          async () => {
            const rows = await replicasView(lb.url)
            return rows.length === 3 && rows.every((row) => row.metrics !== null) ? rows : undefined
          },
          { timeoutMs: 20_000, intervalMs: 200 },
        )
      }

      const dir = await mkdtemp(join(tmpdir(), "sg-prometheus-"))
      onTestFinished(() => rm(dir, { recursive: true, force: true }))
      const config = join(dir, "prometheus.yml")
      await writeFile(
        config,
        [
          "global:",
          "  scrape_interval: 1s",
          "  evaluation_interval: 1s",
          "scrape_configs:",
          "  - job_name: swarmguard-lb",
          "    metrics_path: /_lb/metrics",
          "    static_configs:",
          `      - targets: [${balancers.map((lb) => `"127.0.0.1:${lb.port}"`).join(", ")}]`,
          "  - job_name: swarmguard-agent",
          "    metrics_path: /metrics",
          "    static_configs:",
          `      - targets: ["127.0.0.1:${agentPort}"]`,
          "",
        ].join("\n"),
      )
      const server = startProgram(
        "prometheus",
        prometheus,
        [
          `--config.file=${config}`,
          `--storage.tsdb.path=${join(dir, "data")}`,
          `--web.listen-address=127.0.0.1:${prometheusPort}`,
        ],
        {},
      )
      killOnExit(server)
      onTestFinished(() => stop(server))
      const api = `http://127.0.0.1:${prometheusPort}`
      await untilAnswers(server, `${api}/-/ready`, 30_000)
      // Ready is not scraping yet: targets are applied a few seconds later. The load must be seen.
      await waitFor(
        "Prometheus to scrape both balancers and the agent",
        async () => {
          const answer = json<QueryAnswer>(await request(`${api}/api/v1/query?query=up`))
          const up = answer.data.result.filter((sample) => sample.value[1] === "1")
          return up.length === 3 ? up : undefined
        },
        { timeoutMs: 30_000, intervalMs: 250 },
      )

      // A short, bounded load through both balancers, a few requests in flight on each: over several
      // scrapes, and never fewer than MIN_LOAD requests however slow the machine is.
      const until = Date.now() + LOAD_MS
      let sent = 0
      await Promise.all(
        balancers.flatMap((lb) =>
          Array.from({ length: 4 }, async () => {
            while ((Date.now() < until || sent < MIN_LOAD) && sent < 5_000) {
              sent++
              const reply = await request(`${lb.url}/whoami`)
              expect(reply.status).toBe(200)
            }
          }),
        ),
      )

      for (const { panel, expr } of queries) {
        // Kept to say, on a timeout, what Prometheus answered last.
        let last = ""
        const result = await waitFor(
          `a number from "${panel}": ${expr}`,
          async () => {
            const reply = await request(`${api}/api/v1/query?query=${encodeURIComponent(expr)}`)
            last = reply.body.toString("utf8")
            if (reply.status !== 200) throw new Error(`${reply.status}: ${last}`)
            const answer = json<QueryAnswer>(reply)
            const numbers = answer.data.result.map((sample) => Number(sample.value[1]))
            return numbers.some(Number.isFinite) ? answer.data.result : undefined
          },
          { timeoutMs: 30_000, intervalMs: 500 },
        ).catch((error: unknown) => {
          throw new Error(`${String(error)}; Prometheus answered last: ${last}`)
        })
        expect(result.length, `${panel}: ${expr}`).toBeGreaterThan(0)
      }
    },
    INSTALL_MS + 180_000,
  )
})
