// Replicas that crash, hang, fail fast or all go away while clients keep sending: what clients see and
// how soon the bad replica stops getting traffic.
import { describe, expect, it, onTestFinished } from "vitest"
import { startCluster } from "../support/cluster.ts"
import { json, type Reply, request } from "../support/http.ts"
import { sharesOf } from "../support/views.ts"
import { waitFor } from "../support/wait.ts"
import { failuresOf, rateOf, startLoad } from "./support/load.ts"
import {
  at,
  metricsOf,
  percent,
  report,
  rotationAfter,
  rowOf,
  rowsOf,
  seconds,
  trackRow,
} from "./support/observe.ts"
import { spawnBalancerChild, spawnReplicas } from "./support/processes.ts"

/** A few thousand GETs a second over keep-alive connections, as the issue asks. */
const LOAD = { path: "/whoami", rate: 2500, concurrency: 32 }

/** Three replica processes and a balancer process over them; both stopped when the test ends. */
const processCluster = async (env: Record<string, string>) => {
  const set = await spawnReplicas(3)
  onTestFinished(() => set.killAll())
  const lb = await spawnBalancerChild({ REPLICAS: set.origins, ...env })
  onTestFinished(async () => {
    await lb.stop()
  })
  // Every replica answers through the balancer before the fault: pools are warm, rotation is full.
  await waitFor("every replica to answer through the balancer", async () => {
    const shares = await sharesOf(lb.url, 12)
    return Object.keys(shares).length === 3 ? shares : undefined
  })
  return { set, lb }
}

describe("replica faults under load", () => {
  it("kill -9 of a replica during a GET load: no failed request, and it leaves rotation", async () => {
    const { set, lb } = await processCluster({ LB_ALGORITHM: "lease" })
    const victim = set.replicas[1]!

    const track = trackRow(lb.url, victim.id)
    const load = startLoad({ origin: lb.url, ...LOAD, durationMs: 8_000 })
    await at(performance.now(), 2_000)
    const killedAt = performance.now()
    const exit = await victim.kill("SIGKILL")
    const result = await load.done
    const rotation = rotationAfter(await track.stop(), killedAt)
    const metrics = await metricsOf(lb.url)

    const failures = failuresOf(result.outcomes)
    const served = result.outcomes.filter((outcome) => outcome.endedAt > killedAt)
    const { out } = rotation
    const leftAfterMs = out === undefined ? Number.NaN : out.at - killedAt
    report(
      `kill -9: ${failures.count} failed of ${result.outcomes.length} GETs (${Math.round(rateOf(result))} req/s, ` +
        `${served.length} after the kill); ${victim.name} out of rotation ` +
        `${out === undefined ? "never (by /_lb/replicas)" : `${seconds(leftAfterMs)} s`} after the kill ` +
        `(healthy=${out?.row.healthy}, ejected=${out?.row.ejected}), its picks stopped growing within ` +
        `${seconds(rotation.picksStoppedAfterMs ?? Number.NaN)} s, picks after out ${rotation.picksAfterOut}; ` +
        `retries ${metrics.retries}, denied ${metrics.retries_denied}`,
    )
    expect(exit.signal).toBe("SIGKILL")
    expect(failures.count, JSON.stringify(failures)).toBe(0)
    expect(served.length).toBeGreaterThan(3_000)
    expect(out, "/_lb/replicas never showed the killed replica down or ejected").toBeDefined()
    // Margin: refused connections take it out within the first few requests after the kill (0.2-0.5 s
    // measured on a loaded machine); 2 s leaves room for the 20 ms poll and a shared machine's delays.
    expect(leftAfterMs).toBeLessThan(2_000)
    // Out means out: not one more request routed to it for the rest of the load.
    expect(rotation.picksAfterOut).toBe(0)
    expect(metrics.retries).toBeGreaterThan(0)
  }, 60_000)

  it("a hung replica is ejected within one health interval plus the timeout; clients barely notice", async () => {
    // Only passive ejection can meet this bound: a hung replica still accepts connections, so the
    // proxy reports no health failure, and the probes need UNHEALTHY_THRESHOLD (3) timed-out rounds,
    // over 5 s here. Ejection takes five timed-out requests in a row; under `lease` the hung replica
    // gets them in a few waves of UPSTREAM_RESPONSE_TIMEOUT each (0.9-1.5 s measured), so the probe
    // interval is 2 s.
    const intervalMs = 2_000
    const timeoutMs = 500
    const { set, lb } = await processCluster({
      LB_ALGORITHM: "lease",
      HEALTH_CHECK_INTERVAL: String(intervalMs / 1000),
      HEALTH_CHECK_TIMEOUT: String(timeoutMs / 1000),
      UPSTREAM_RESPONSE_TIMEOUT: String(timeoutMs / 1000),
    })
    const victim = set.replicas[2]!

    const track = trackRow(lb.url, victim.id)
    const load = startLoad({ origin: lb.url, ...LOAD, durationMs: 8_000 })
    await at(performance.now(), 2_000)
    const hungAt = performance.now()
    await victim.setMode("hang")
    const result = await load.done
    const rotation = rotationAfter(await track.stop(), hungAt)
    const metrics = await metricsOf(lb.url)
    const row = await rowOf(lb.url, victim.id)
    const { out } = rotation

    const failures = failuresOf(result.outcomes)
    const share = failures.count / result.outcomes.length
    const leftAfterMs = out === undefined ? Number.NaN : out.at - hungAt
    const limitMs = intervalMs + timeoutMs
    report(
      `hung replica: ${victim.name} out of rotation ` +
        `${out === undefined ? "never (by /_lb/replicas)" : `${seconds(leftAfterMs)} s`} after it hung ` +
        `(limit ${seconds(limitMs)} s + 0.20 s; healthy=${out?.row.healthy}, ejected=${out?.row.ejected}), its picks ` +
        `stopped growing within ${seconds(rotation.picksStoppedAfterMs ?? Number.NaN)} s; ` +
        `${failures.count} client errors of ${result.outcomes.length} GETs (${percent(share)}, limit 0.1%) ` +
        `${JSON.stringify(failures.kinds)}; ejections ${metrics.ejections} (its row ${row.ejections}); ` +
        `retries ${metrics.retries}, denied ${metrics.retries_denied}`,
    )
    expect(out, "the hung replica never left rotation").toBeDefined()
    // Taken out by ejection, the mechanism that meets the bound, not by the probes.
    expect(out?.row.ejected, JSON.stringify(out?.row)).toBe(true)
    expect(metrics.ejections).toBeGreaterThanOrEqual(1)
    expect(row.ejections).toBeGreaterThanOrEqual(1)
    // Margin: 0.2 s over the bound for the 20 ms poll of /_lb/replicas and a shared machine's delays
    // in answering it; the ejection itself was seen 0.7-0.8 s after the hang, with a load average of 8-13.
    expect(leftAfterMs).toBeLessThanOrEqual(limitMs + 200)
    expect(rotation.picksAfterOut).toBe(0)
    expect(share, JSON.stringify(failures)).toBeLessThanOrEqual(0.001)
  }, 60_000)

  it("a replica answering fast 500s gets under 1% of requests within 2 s", async () => {
    // Its /health still passes: only the answers it gives clients can take it out (passive ejection).
    const { set, lb } = await processCluster({ LB_ALGORITHM: "lease" })
    const victim = set.replicas[0]!

    const track = trackRow(lb.url, victim.id)
    const load = startLoad({ origin: lb.url, ...LOAD, durationMs: 7_500 })
    await at(performance.now(), 1_500)
    const brokenAt = performance.now()
    await victim.setMode("error")
    const result = await load.done
    const { out } = rotationAfter(await track.stop(), brokenAt)
    const metrics = await metricsOf(lb.url)
    const row = await rowOf(lb.url, victim.id)
    const ejectedAfterMs = out === undefined ? Number.NaN : out.at - brokenAt

    const window = result.outcomes.filter((outcome) => outcome.sentAt >= brokenAt + 2_000)
    const toVictim = window.filter((outcome) => outcome.replica === victim.name).length
    const share = window.length === 0 ? Number.NaN : toVictim / window.length
    const errors500 = result.outcomes.filter((outcome) => outcome.status === 500).length
    const windowSeconds = window.length === 0 ? 0 : (result.endedAt - (brokenAt + 2_000)) / 1000
    const lastFromVictim = Math.max(
      ...result.outcomes
        .filter((outcome) => outcome.replica === victim.name)
        .map((outcome) => outcome.endedAt),
    )
    report(
      `fast 500s: ${victim.name}'s share ${percent(share)} (${toVictim} of ${window.length} requests in the ` +
        `${windowSeconds.toFixed(1)} s from 2 s after it broke, limit 1%); clients saw ${errors500} 500s ` +
        `of ${result.outcomes.length} GETs, the last answer from it ${seconds(lastFromVictim - brokenAt)} s after ` +
        `it broke; ejected ${out === undefined ? "never (by /_lb/replicas)" : `${seconds(ejectedAfterMs)} s`} after ` +
        `it broke (limit 2 s; healthy=${out?.row.healthy}, ejected=${out?.row.ejected}); ejections ` +
        `${metrics.ejections} (its row ${row.ejections})`,
    )
    // Passive ejection is what keeps it out: the balancer must say it ejected it.
    expect(out?.row.ejected, "/_lb/replicas never showed the failing replica ejected").toBe(true)
    expect(metrics.ejections).toBeGreaterThanOrEqual(1)
    expect(row.ejections).toBeGreaterThanOrEqual(1)
    // Five 500s in a row at this rate take milliseconds (ejected 0.05-0.17 s after it broke, with a
    // load average of 8-13): 2 s is the claim's own bound, far from tight.
    expect(ejectedAfterMs).toBeLessThanOrEqual(2_000)
    expect(window.length).toBeGreaterThan(1_000)
    expect(share).toBeLessThan(0.01)
    // The other replicas served the rest: every answer but a 200 is one of the broken replica's 500s.
    expect(
      result.outcomes.filter(
        (outcome) => outcome.status !== 200 && !(outcome.status === 500 && outcome.replica === victim.name),
      ),
    ).toEqual([])
  }, 60_000)

  it("every replica down, then back: 503 JSON while down, the probes restore every replica within one health interval", async () => {
    // One successful probe brings a replica back, so one probe round after their return is enough.
    const intervalMs = 1_000
    const { set, lb } = await startCluster({
      LB_ALGORITHM: "lease",
      HEALTH_CHECK_INTERVAL: String(intervalMs / 1000),
      HEALTH_CHECK_TIMEOUT: "0.5",
      HEALTHY_THRESHOLD: "1",
    })
    await sharesOf(lb.url, 9)

    const stoppedAt = performance.now()
    await set.stopAll()
    // Until every replica is marked down the answers may still be 502s; each must say why, in JSON.
    const transition: Array<Reply> = []
    await waitFor(
      "every replica to be marked down",
      async () => {
        transition.push(await request(`${lb.url}/whoami`))
        const health = json<{ replicas_healthy: number }>(await request(`${lb.url}/_lb/health`))
        return health.replicas_healthy === 0 ? true : undefined
      },
      { timeoutMs: 15_000, intervalMs: 50 },
    )
    const downAfterMs = performance.now() - stoppedAt
    const whileDown: Array<Reply> = []
    for (let i = 0; i < 30; i++) whileDown.push(await request(`${lb.url}/whoami`))
    const panicWhileDown = (await metricsOf(lb.url)).panic_decisions

    await Promise.all(set.replicas.map((replica) => replica.restart()))
    const backAt = performance.now()
    // No request meanwhile: panic routing would reach them too, and only the probes may bring them back.
    const restoredAt = await waitFor(
      "the probes to mark every replica healthy again",
      async () => {
        const health = json<{ replicas_healthy: number }>(await request(`${lb.url}/_lb/health`))
        return health.replicas_healthy === set.replicas.length ? performance.now() : undefined
      },
      { timeoutMs: 10_000, intervalMs: 20 },
    )
    const restoredAfterMs = restoredAt - backAt
    const panicBefore = (await metricsOf(lb.url)).panic_decisions
    const shares = await sharesOf(lb.url, 30)
    const panicAfter = (await metricsOf(lb.url)).panic_decisions
    // Their connection errors while down may have ejected one too (at most one of three): it sits out
    // its ejection time, healthy or not.
    const ejected = new Set((await rowsOf(lb.url)).filter((row) => row.ejected).map((row) => row.id))
    const inRotation = set.replicas.filter((replica) => !ejected.has(replica.id))

    const bodies = whileDown.map((reply) => ({
      status: reply.status,
      type: reply.headers["content-type"],
      body: reply.body.toString("utf8"),
    }))
    const statuses = [...new Set(bodies.map((body) => body.status))]
    report(
      `all replicas down: marked down ${seconds(downAfterMs)} s after they stopped ` +
        `(${transition.length} requests meanwhile, statuses ${[...new Set(transition.map((r) => r.status))]}); ` +
        `while down ${whileDown.length} requests answered ${statuses} ${bodies[0]?.body} ` +
        `(${panicWhileDown} panic decisions); all ${set.replicas.length} healthy again by the probes ` +
        `${seconds(restoredAfterMs)} s after they returned (limit ${seconds(intervalMs)} s + 0.30 s), then 30 of 30 ` +
        `200s ${JSON.stringify(shares)} with ${panicAfter - panicBefore} more panic decisions ` +
        `(${ejected.size} ejected while down)`,
    )
    for (const reply of transition) {
      expect(reply.headers["content-type"]).toMatch(/^application\/json/)
      expect(typeof json<{ error?: unknown }>(reply).error).toBe("string")
    }
    for (const body of bodies) {
      expect(body.status, body.body).toBe(503)
      expect(body.type).toMatch(/^application\/json/)
      const parsed = JSON.parse(body.body) as { error?: unknown; message?: unknown }
      expect(parsed.error).toBe("no_healthy_replica")
      expect(typeof parsed.message).toBe("string")
    }
    // Margin: 0.3 s over the interval for the probe round's own time (the next round starts an interval
    // after the last one ended), the probe's exchange, the 20 ms poll of /_lb/health and a shared
    // machine's delays (0.1 s measured with a load average of 11 on two cores).
    expect(restoredAfterMs).toBeLessThanOrEqual(intervalMs + 300)
    // Routed as healthy replicas again, not in panic mode, to every one not ejected.
    expect(panicAfter).toBe(panicBefore)
    expect(inRotation.length).toBeGreaterThanOrEqual(2)
    expect(Object.keys(shares).sort()).toEqual(inRotation.map((replica) => replica.name).sort())
  }, 60_000)
})
