// Bad input costs only its own connection: malformed, ambiguous, oversized and trickled requests get
// their 4xx, misbehaving agents get their reports rejected, and a bystander keeps getting 200s.
import { describe, expect, it, onTestFinished } from "vitest"
import { startBalancerOverAgent } from "../support/agent.ts"
import { useCluster } from "../support/cluster.ts"
import { request } from "../support/http.ts"
import { startReplicas } from "../support/replicas.ts"
import { sharesOf } from "../support/views.ts"
import { waitFor } from "../support/wait.ts"
import { describeBystander, startBystander } from "./support/bystander.ts"
import { type AgentMode, startFaultAgent } from "./support/fault-agent.ts"
import { type FaultMetrics, metricsOf, report, rowsOf, seconds } from "./support/observe.ts"
import { type RawAnswer, rawExchange } from "./support/raw.ts"

const HEADER_TIMEOUT_MS = 2_000

/** What a set of raw answers looked like, for the report line. */
const summary = (answers: ReadonlyArray<RawAnswer>) => {
  const statuses: Record<string, number> = {}
  for (const answer of answers) statuses[answer.status] = (statuses[answer.status] ?? 0) + 1
  const closed = answers.filter((answer) => answer.closedByPeer).length
  return `${JSON.stringify(statuses)}, ${closed} of ${answers.length} closed by the balancer`
}

describe("bad requests", () => {
  const cluster = useCluster({ CLIENT_HEADER_TIMEOUT: String(HEADER_TIMEOUT_MS / 1000) })

  /**
   * Runs `misbehave` in rounds for at least `forMs` (at least once) while a bystander keeps asking;
   * returns every round's answers and the bystander's report.
   */
  const withBystander = async <A>(misbehave: () => Promise<ReadonlyArray<A>>, forMs = 1_000) => {
    const bystander = startBystander(cluster.lb.url)
    try {
      const startedAt = performance.now()
      const result: Array<A> = []
      do result.push(...(await misbehave()))
      while (performance.now() - startedAt < forMs)
      return { result, bystander: await bystander.stop() }
    } catch (error) {
      await bystander.stop()
      throw error
    }
  }

  it("malformed request lines: 400 and the connection closed", async () => {
    const lines = [
      "THIS IS NOT HTTP\r\n\r\n",
      "GET\r\n\r\n",
      "GET /whoami HTTP/9.9\r\nHost: x\r\n\r\n",
      "GET /who ami HTTP/1.1\r\nHost: x\r\n\r\n",
      "GET /whoami HTTP/1.1 trailing\r\nHost: x\r\n\r\n",
      "\u0000\u0001\u0002\u0003\r\n\r\n",
      "GET /whoami HTTP/1.1\r\nHost: x\r\nBad Header Name: 1\r\n\r\n",
    ]
    const { result, bystander } = await withBystander(() =>
      Promise.all(lines.map((line) => rawExchange(cluster.lb.port, [line]))),
    )
    report(
      `malformed request lines: ${result.length} sent (${lines.length} kinds), answers ${summary(result)}; ${describeBystander(bystander)}`,
    )
    for (const [index, answer] of result.entries()) {
      expect(answer.status, JSON.stringify({ line: lines[index % lines.length], answer })).toBe(400)
      expect(answer.closedByPeer).toBe(true)
    }
    expect(bystander.failures).toEqual([])
    expect(bystander.ok).toBeGreaterThanOrEqual(20)
  })

  it("conflicting Content-Length and Transfer-Encoding: 400, and nothing reaches a replica", async () => {
    const uploadsBefore = cluster.set.replicas.reduce((sum, replica) => sum + replica.hits("/upload"), 0)
    const heads = [
      "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
      "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
      "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
      "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 6\r\n\r\nhello!",
    ]
    const { result, bystander } = await withBystander(() =>
      Promise.all(heads.map((head) => rawExchange(cluster.lb.port, [head]))),
    )
    const uploads =
      cluster.set.replicas.reduce((sum, replica) => sum + replica.hits("/upload"), 0) - uploadsBefore
    report(
      `conflicting framing: ${result.length} sent (${heads.length} kinds), answers ${summary(result)}, ${uploads} reached a replica; ` +
        describeBystander(bystander),
    )
    for (const [index, answer] of result.entries()) {
      expect(answer.status, JSON.stringify({ head: heads[index % heads.length], answer })).toBe(400)
      expect(answer.closedByPeer).toBe(true)
    }
    expect(uploads).toBe(0)
    expect(bystander.failures).toEqual([])
    expect(bystander.ok).toBeGreaterThanOrEqual(20)
  })

  it("64 KiB of headers: 431 and the connection closed", async () => {
    const filler = Array.from({ length: 64 }, (_, i) => `X-Filler-${i}: ${"a".repeat(1000)}\r\n`).join("")
    const head = `GET /whoami HTTP/1.1\r\nHost: x\r\n${filler}\r\n`
    const { result, bystander } = await withBystander(() =>
      Promise.all([0, 1, 2].map(() => rawExchange(cluster.lb.port, [head]))),
    )
    report(
      `${(Buffer.byteLength(head) / 1024).toFixed(1)} KiB of headers: ${result.length} sent, answers ${summary(result)}; ` +
        describeBystander(bystander),
    )
    for (const answer of result) {
      expect(answer.status, answer.received.slice(0, 200)).toBe(431)
      expect(answer.closedByPeer).toBe(true)
    }
    expect(bystander.failures).toEqual([])
    expect(bystander.ok).toBeGreaterThanOrEqual(20)
    // The limit is on the head only: a request of ordinary size still passes.
    expect(
      (await request(`${cluster.lb.url}/whoami`, { headers: { "x-ordinary": "a".repeat(4_000) } })).status,
    ).toBe(200)
  })

  it("slowloris: headers trickled for longer than CLIENT_HEADER_TIMEOUT get a 408 and a closed connection", async () => {
    // One byte every 250 ms, so the connection is never idle long: only a deadline on the head stops it.
    const trickle = ["GET /whoami HTTP/1.1\r\n", "Host: x\r\n", "X-Slow: ", ...Array(60).fill("a")]
    const { result, bystander } = await withBystander(() =>
      Promise.all(
        Array.from({ length: 10 }, () =>
          rawExchange(cluster.lb.port, trickle, { gapMs: 250, timeoutMs: 10_000 }),
        ),
      ),
    )
    const answered = result.map((answer) => answer.answeredAfterMs)
    const closed = result.map((answer) => answer.closedAfterMs)
    report(
      `slowloris: ${result.length} trickling clients, answers ${summary(result)}, 408 after ` +
        `${seconds(Math.min(...answered))}-${seconds(Math.max(...answered))} s, closed after ` +
        `${seconds(Math.min(...closed))}-${seconds(Math.max(...closed))} s (CLIENT_HEADER_TIMEOUT ` +
        `${seconds(HEADER_TIMEOUT_MS)} s); ${describeBystander(bystander)}`,
    )
    for (const answer of result) {
      expect(answer.status, answer.received.slice(0, 200)).toBe(408)
      expect(answer.closedByPeer).toBe(true)
      // Node checks its connections once a second at most: the deadline plus that, with a little slack.
      expect(answer.answeredAfterMs).toBeGreaterThanOrEqual(HEADER_TIMEOUT_MS - 100)
      expect(answer.closedAfterMs).toBeLessThanOrEqual(HEADER_TIMEOUT_MS + 1_250)
    }
    expect(bystander.failures).toEqual([])
    expect(bystander.ok).toBeGreaterThan(50)
  })
})

describe("misbehaving agents", () => {
  /** Three replicas discovered through one agent, `metrics` routing on its reports, all fresh. */
  const setUp = async () => {
    const set = await startReplicas(3, { samePort: true })
    onTestFinished(() => set.stopAll())
    const agent = await startFaultAgent(set.replicas, { slowMs: 2_000 })
    onTestFinished(() => agent.stop())
    const lb = await startBalancerOverAgent(agent.node, set.replicas, {
      LB_ALGORITHM: "metrics",
      AGENT_TIMEOUT: "0.5",
    })
    return { set, agent, lb }
  }

  it.each<[string, AgentMode]>([
    ["truncated JSON", "truncated"],
    ["wrong-typed JSON", "wrong-types"],
    ["too late (beyond AGENT_TIMEOUT)", "slow"],
  ])("an agent answering %s: its report is rejected, routing falls back, the balancer serves", async (what, mode) => {
    const { agent, lb } = await setUp()
    // On fresh metrics no decision falls back: the fallback counted below is the bad reports' doing.
    const fresh = await metricsOf(lb.url)
    await sharesOf(lb.url, 30)
    expect((await metricsOf(lb.url)).fallback_decisions - fresh.fallback_decisions).toBe(0)

    const bystander = startBystander(lb.url)
    const before = await metricsOf(lb.url)
    agent.setMode(mode)
    const switchedAt = performance.now()
    const rows = await waitFor(
      "every replica's metrics to go stale",
      async () => {
        const current = await rowsOf(lb.url)
        return current.length === 3 && current.every((row) => row.metrics?.fresh === false)
          ? current
          : undefined
      },
      { timeoutMs: 10_000 },
    )
    const staleAfterMs = performance.now() - switchedAt
    const failuresOf = (metrics: FaultMetrics) => metrics.agent_poll_failures?.[agent.node]
    // A timed-out poll is counted when its timeout fires, which may come after the metrics went stale.
    await waitFor(
      `agent_poll_failures to count ${agent.node}'s failed polls`,
      async () => ((failuresOf(await metricsOf(lb.url)) ?? 0) > (failuresOf(before) ?? 0) ? true : undefined),
      { timeoutMs: 5_000 },
    ).catch(() => undefined)
    const during = await bystander.stop()
    const start = await metricsOf(lb.url)
    const shares = await sharesOf(lb.url, 60)
    const after = await metricsOf(lb.url)
    const health = await request(`${lb.url}/_lb/health`)

    const fallbacks = after.fallback_decisions - start.fallback_decisions
    const pollFailures = (failuresOf(after) ?? Number.NaN) - (failuresOf(before) ?? 0)
    report(
      `agent answering ${what}: ${agent.polled(mode)} polls answered badly, metrics stale ${seconds(staleAfterMs)} s ` +
        `after the switch, agent_poll_failures ${JSON.stringify(after.agent_poll_failures)} (+${pollFailures}), ` +
        `${fallbacks} of 60 decisions fell back ${JSON.stringify(shares)}; ${describeBystander(during)}`,
    )
    // The last good report keeps the replicas known; only their metrics age.
    expect(rows.map((row) => row.metrics?.age_ms ?? 0).every((age) => age > 0)).toBe(true)
    expect(fallbacks).toBe(60)
    expect(pollFailures).toBeGreaterThanOrEqual(1)
    expect(during.failures).toEqual([])
    expect(during.ok).toBeGreaterThan(0)
    expect(health.status).toBe(200)
  })
})
