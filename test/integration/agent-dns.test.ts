// WORKER_NODES names that resolve to several addresses (Swarm's `tasks.<agent service>`): one agent per address, and the last list kept while lookups fail.
import { type ChildProcess, spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import { describe, expect, it, onTestFinished } from "vitest"
import { type FakeAgent, NETWORK, SERVICE, startAgent } from "../support/agent.ts"
import { type DnsServer, startDnsServer } from "../support/dns.ts"
import { type ReplicaServer, startReplicas } from "../support/replicas.ts"
import { metricsView, type ReplicaRow, replicasView } from "../support/views.ts"
import { waitFor, within } from "../support/wait.ts"

const repoRoot = fileURLToPath(new URL("../..", import.meta.url))
const AGENTS_NAME = "tasks.agents.swarmguard.test"
const LISTENING = /message="load balancer listening".*\baddress=([\d.]+):(\d+)/

const exited = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve()
    else child.once("exit", () => resolve())
  })

/**
 * Runs `src/main.ts` with `env`, resolving names through `dns` alone; it stops when the test finishes.
 * A process of its own: the resolver a process uses is fixed for the whole process.
 */
const startResolvingBalancer = async (dns: DnsServer, env: Record<string, string>) => {
  const [command, ...args] = [...dns.isolate, process.execPath, "--import", "tsx", "src/main.ts"]
  const child = spawn(command!, args, {
    cwd: repoRoot,
    env: {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "",
      TMPDIR: process.env.TMPDIR ?? "/tmp",
      LB_HOST: "127.0.0.1",
      LB_PORT: "0",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  })
  // Should the test runner itself die, the balancer must not be left running.
  const orphanGuard = () => child.kill("SIGKILL")
  process.once("exit", orphanGuard)
  onTestFinished(async () => {
    child.kill("SIGTERM")
    await within("the balancer to exit after SIGTERM", 10_000, exited(child)).catch(() =>
      child.kill("SIGKILL"),
    )
    process.off("exit", orphanGuard)
  })
  let output = ""
  child.stdout!.setEncoding("utf8").on("data", (text: string) => {
    output += text
  })
  child.stderr!.setEncoding("utf8").on("data", (text: string) => {
    output += text
  })
  const port = await waitFor(
    "the balancer to log its listening address",
    () => {
      if (child.exitCode !== null) throw new Error(`the balancer exited with ${child.exitCode}: ${output}`)
      const match = LISTENING.exec(output)
      return match ? Number(match[2]) : undefined
    },
    { timeoutMs: 30_000 },
  )
  return { url: `http://127.0.0.1:${port}` }
}

/** Two agents on one port, on hosts of their own, each reporting its own replicas. */
const startAgentPair = (first: ReadonlyArray<ReplicaServer>, second: ReadonlyArray<ReplicaServer>) =>
  waitFor(
    "two agents sharing one free port",
    async () => {
      const a = await startAgent(first, { host: "127.0.0.240", node: "node-a" })
      const port = Number(a.node.split(":")[1])
      try {
        const b = await startAgent(second, { host: "127.0.0.241", port, node: "node-b" })
        return { a, b, port }
      } catch {
        // The port was taken on the second host: try another.
        await a.stop()
        return undefined
      }
    },
    { timeoutMs: 5_000, intervalMs: 10 },
  )

type Row = ReplicaRow & { readonly node: string | null }

/** `/_lb/replicas` once it lists exactly `replicas`, each with fresh metrics. */
const waitForReplicas = (lb: string, agent: FakeAgent, replicas: ReadonlyArray<ReplicaServer>) =>
  waitFor(`the balancer to list ${replicas.map((replica) => replica.name).join(", ")}`, async () => {
    const rows = (await replicasView(lb)) as ReadonlyArray<Row>
    const ids = rows.map((row) => row.id).sort()
    const wanted = replicas.map(agent.containerId).sort()
    const exact = JSON.stringify(ids) === JSON.stringify(wanted) && rows.every((row) => row.metrics?.fresh)
    return exact ? rows : undefined
  })

describe("agents behind one name", () => {
  it("one agent per address; a failed lookup keeps the last list; a new answer replaces it", async () => {
    const dns = await startDnsServer()
    onTestFinished(() => dns.stop())
    const set = await startReplicas(4, { samePort: true })
    onTestFinished(() => set.stopAll())
    const [one, two, three, four] = set.replicas as [
      ReplicaServer,
      ReplicaServer,
      ReplicaServer,
      ReplicaServer,
    ]
    const { a, b, port } = await startAgentPair([one, two], [three, four])
    onTestFinished(() => a.stop())
    onTestFinished(() => b.stop())
    dns.answer(AGENTS_NAME, ["127.0.0.240", "127.0.0.241"])

    const lb = await startResolvingBalancer(dns, {
      WORKER_NODES: `${AGENTS_NAME}:${port}`,
      TARGET_SERVICE: SERVICE,
      TARGET_PORT: String(one.port),
      LB_NETWORK: NETWORK,
      CACHE_TTL: "0.2",
      AGENT_TIMEOUT: "1",
    })

    // Both agents are polled, each under its own address, and their replicas together make the pool.
    const rows = await waitForReplicas(lb.url, a, set.replicas)
    expect(new Set(rows.map((row) => row.node))).toEqual(new Set(["node-a", "node-b"]))
    const agents = Object.keys((await metricsView(lb.url)).agent_poll_failures).sort()
    expect(agents).toEqual([`127.0.0.240:${port}`, `127.0.0.241:${port}`])

    // The name stops resolving: the agents it last named are still polled, their replicas kept.
    dns.answer(AGENTS_NAME, "fail")
    await waitFor("three failed lookups", () => (dns.queries(AGENTS_NAME).failed >= 3 ? true : undefined))
    const polled = { a: a.polls(), b: b.polls(), failed: dns.queries(AGENTS_NAME).failed }
    await waitFor("both agents to be polled three more times", () =>
      a.polls() >= polled.a + 3 && b.polls() >= polled.b + 3 ? true : undefined,
    )
    expect(dns.queries(AGENTS_NAME).failed).toBeGreaterThan(polled.failed)
    await waitForReplicas(lb.url, a, set.replicas)
    expect(Object.keys((await metricsView(lb.url)).agent_poll_failures).sort()).toEqual(agents)

    // It resolves again, to one of them only: the other's replicas leave the pool.
    dns.answer(AGENTS_NAME, ["127.0.0.240"])
    await waitForReplicas(lb.url, a, [one, two])
  })
})
