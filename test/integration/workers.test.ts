// LB_WORKERS: the real program as a node:cluster primary and its workers, serving one port. The
// views answer for every worker, a dead worker is replaced, SIGTERM drains them all, and a bad
// configuration still ends in one line.
import { readFileSync } from "node:fs"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type BalancerProcess, runBalancerToExit, spawnBalancer } from "../../src/process/balancer.ts"
import { getJson, json, type Reply, request } from "../support/http.ts"
import { type ReplicaSet, startReplicas } from "../support/replicas.ts"
import { routesFile } from "../support/routes-file.ts"
import { metricsView, type ReplicaRow, replicasView, sharesOf } from "../support/views.ts"
import { waitFor, within } from "../support/wait.ts"

const WORKERS = 2

/** The lines of `stdout` that log `message` (logfmt, as launch.ts sets). */
const linesOf = (stdout: string, message: string): Array<string> =>
  stdout.split("\n").filter((line) => line.includes(`message="${message}"`))

/** A logfmt line as key=value pairs, quotes and all. */
const fieldsOf = (line: string): Record<string, string> =>
  Object.fromEntries(Array.from(line.matchAll(/(\w+)=("[^"]*"|\S+)/g), (match) => [match[1], match[2]]))

/**
 * Waits until the balancer has logged `message` `count` times, and returns those lines. Fails at
 * once when it exits first, and with its output either way, so a failure shows what it said.
 */
const untilLoggedTimes = async (
  lb: BalancerProcess,
  message: string,
  count: number,
  timeoutMs = 30_000,
): Promise<Array<string>> => {
  const exited = () => lb.process.exitCode !== null || lb.process.signalCode !== null
  const lines = await waitFor(
    `${count} "${message}" lines`,
    () => {
      const found = linesOf(lb.stdout(), message)
      if (found.length >= count) return found
      return exited() ? null : undefined
    },
    { timeoutMs, intervalMs: 20 },
  ).catch((error: Error) => {
    throw new Error(`${error.message}; the balancer's output:\n${lb.output()}`)
  })
  if (lines === null) throw new Error(`the balancer exited before it logged "${message}":\n${lb.output()}`)
  return lines
}

/** The primary's child processes, its workers: Linux lists a thread's children in /proc. */
const workerPids = (primary: number): Array<number> =>
  readFileSync(`/proc/${primary}/task/${primary}/children`, "utf8")
    .split(" ")
    .filter((pid) => pid !== "")
    .map(Number)

/** The samples of one family of a Prometheus exposition: labels as written, and value. */
const samplesOf = (exposition: string, family: string) =>
  exposition.split("\n").flatMap((line) => {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    return match?.[1] === family ? [{ labels: match[2] ?? "", value: Number(match[3]) }] : []
  })

interface Health {
  readonly status: string
  readonly workers?: number
  readonly replicas_known: number
  readonly replicas_healthy: number
}

const sum = (values: ReadonlyArray<number>) => values.reduce((total, value) => total + value, 0)

describe("LB_WORKERS=2", () => {
  let set: ReplicaSet
  let lb: BalancerProcess

  beforeAll(async () => {
    set = await startReplicas(3)
    // Long enough that the drain below is never cut short, however slow the machine.
    lb = await spawnBalancer({ REPLICAS: set.origins, LB_WORKERS: String(WORKERS), DRAIN_TIMEOUT: "15" })
    // spawnBalancer returned at the first worker's line; the primary forks the others only then.
    await untilLoggedTimes(lb, "load balancer workers started", 1)
    await untilLoggedTimes(lb, "load balancer listening", WORKERS)
  })
  afterAll(async () => {
    await lb?.close()
    await set?.stopAll()
  })

  it("serves one port from both workers, and its views answer for both", async () => {
    const started = fieldsOf(linesOf(lb.stdout(), "load balancer workers started")[0]!)
    expect(started).toMatchObject({ workers: String(WORKERS), primary_pid: String(lb.pid) })
    // LB_PORT=0: every worker got the port the cluster bound once.
    const addresses = linesOf(lb.stdout(), "load balancer listening").map((line) => fieldsOf(line).address)
    expect(addresses).toEqual(Array(WORKERS).fill(`127.0.0.1:${lb.port}`))
    expect(workerPids(lb.pid)).toHaveLength(WORKERS)

    // One request per connection (`request` has no agent: `Connection: close`), one after another:
    // the cluster hands each new connection to the next free worker, so they alternate. That each
    // worker served its share is shown in the next test, where one of them dies with its count.
    const sent = 200
    const shares = await sharesOf(lb.url, sent)
    expect(sum(Object.values(shares))).toBe(sent)

    // The balancer is fresh and this test runs first: every count below is exactly these requests.
    // The views are answered before routing (layers/proxy/node-undici.ts), so reading them adds none.
    const metrics = await metricsView(lb.url)
    expect(metrics.total_requests).toBe(sent)

    const rows: ReadonlyArray<ReplicaRow> = await replicasView(lb.url)
    // One row per replica, merged from both workers' rows.
    expect(rows.map((row) => row.id).sort()).toEqual(set.replicas.map((replica) => replica.id).sort())
    expect(sum(rows.map((row) => row.picks))).toBe(sent)

    const health = await getJson<Health>(`${lb.url}/_lb/health`)
    expect(health).toMatchObject({ status: "ok", workers: WORKERS, replicas_known: set.replicas.length })

    const scrape = await request(`${lb.url}/_lb/metrics`)
    expect(scrape.status).toBe(200)
    const exposition = scrape.body.toString("utf8")
    // Per process: one series per worker, told apart by its label.
    const memory = samplesOf(exposition, "process_resident_memory_bytes")
    const workerLabels = memory.map(({ labels }) => /^worker="(\d+)"$/.exec(labels)?.[1])
    expect(new Set(workerLabels).size, exposition).toBe(WORKERS)
    expect(workerLabels).not.toContain(undefined)
    for (const { value } of memory) expect(value).toBeGreaterThan(0)
    // For the balancer: the workers' counts added up, with no worker label.
    const requests = samplesOf(exposition, "swarmguard_lb_requests_total")
    expect(requests.length).toBeGreaterThan(0)
    for (const { labels } of requests) expect(labels).not.toContain("worker=")
    expect(sum(requests.map(({ value }) => value))).toBe(sent)

    // Read again after every view: none of them was counted as a proxied request.
    expect((await metricsView(lb.url)).total_requests).toBe(sent)
  })

  it("replaces a worker killed with SIGKILL", async () => {
    // Its own requests, so the split below does not rest on the test before.
    await sharesOf(lb.url, 100)
    const before = (await metricsView(lb.url)).total_requests
    const pids = workerPids(lb.pid)
    expect(pids).toHaveLength(WORKERS)
    const [killed, survivor] = pids as [number, number]

    process.kill(killed, "SIGKILL")
    const [exitLine] = await untilLoggedTimes(lb, "a worker exited; starting another", 1)
    expect(fieldsOf(exitLine!)).toMatchObject({ signal: "SIGKILL", code: "null" })
    expect(fieldsOf(exitLine!).worker).toMatch(/^[12]$/)
    // Restarted: a third worker listens, in the killed one's place.
    await untilLoggedTimes(lb, "load balancer listening", WORKERS + 1)
    const now = await waitFor(`${WORKERS} workers again, without pid ${killed}`, () => {
      const current = workerPids(lb.pid)
      return current.length === WORKERS && !current.includes(killed) ? current : undefined
    })
    expect(now).toContain(survivor)

    // The killed worker's counts went with it, and the new one has none yet: what is left is the
    // survivor's. Neither part is empty, so both workers had served requests.
    const survivorsCount = (await metricsView(lb.url)).total_requests
    expect(survivorsCount).toBeGreaterThan(0)
    expect(survivorsCount).toBeLessThan(before)

    const after = 100
    expect(sum(Object.values(await sharesOf(lb.url, after)))).toBe(after)
    expect((await metricsView(lb.url)).total_requests).toBe(survivorsCount + after)
    const health = await getJson<Health>(`${lb.url}/_lb/health`)
    expect(health).toMatchObject({ status: "ok", workers: WORKERS })
  })

  it("drains every worker on SIGTERM, then exits 0", async () => {
    const slowHits = () => sum(set.replicas.map((replica) => replica.hits("/slow")))
    const hitsBefore = slowHits()
    // Each on a new connection, all at once: the cluster gives the first two to different workers
    // (both are free), so both have requests in flight. Seconds long, so they surely still are when
    // the signal comes, however slow the machine.
    const count = 6
    const slow = Array.from({ length: count }, () =>
      request(`${lb.url}/slow?ms=4000`, { timeoutMs: 30_000 }).then(
        (reply): Reply | Error => reply,
        (error: Error) => error,
      ),
    )
    await waitFor(`${count} slow requests to reach the replicas`, () =>
      slowHits() - hitsBefore === count ? true : undefined,
    )

    lb.signal("SIGTERM")
    const exit = await within("the primary to exit once its workers have drained", 30_000, lb.exited)
    expect(exit.code, exit.stdout + exit.stderr).toBe(0)
    for (const outcome of await Promise.all(slow)) {
      expect(outcome).not.toBeInstanceOf(Error)
      const reply = outcome as Reply
      expect(reply.status).toBe(200)
      expect(json(reply)).toMatchObject({ slept_ms: 4000 })
    }

    expect(fieldsOf(linesOf(exit.stdout, "draining the workers")[0] ?? "")).toMatchObject({
      workers: String(WORKERS),
    })
    // One line each from both workers: each had requests in flight, and all of them finished, none cut.
    const draining = linesOf(exit.stdout, "draining connections").map(fieldsOf)
    expect(draining, exit.stdout).toHaveLength(WORKERS)
    for (const { in_flight } of draining) expect(Number(in_flight)).toBeGreaterThan(0)
    expect(sum(draining.map(({ in_flight }) => Number(in_flight)))).toBe(count)
    const finished = linesOf(exit.stdout, "drain finished").map(fieldsOf)
    expect(finished, exit.stdout).toHaveLength(WORKERS)
    for (const line of finished) expect(line).toMatchObject({ cut: "0", deadline_reached: "false" })
    expect(sum(finished.map((line) => Number(line.finished)))).toBe(count)
    expect(exit.stderr).toBe("")
  })

  /** The one line a failed start printed, after checking it was one line and exit code 1. */
  const oneLine = (exit: { code: number | null; stdout: string; stderr: string }) => {
    expect(exit.code, exit.stdout + exit.stderr).toBe(1)
    const lines = exit.stderr.split("\n").filter((line) => line !== "")
    expect(lines, exit.stderr).toHaveLength(1)
    expect(exit.stdout).not.toContain("load balancer listening")
    return lines[0]!
  }

  it.concurrent.each([
    // Read by the primary itself, before it forks anything.
    ["LB_ALGORITHM", "bogus"],
    ["LB_WORKERS", "abc"],
    ["LB_WORKERS", "0"],
  ])("%s=%s stops the program before it forks, with one line naming it", async (variable, value) => {
    const env = { REPLICAS: "http://127.0.0.2:9", LB_WORKERS: String(WORKERS), [variable]: value }
    const exit = await runBalancerToExit(env)
    const line = oneLine(exit)
    expect(exit.stdout).not.toContain("load balancer workers started")
    expect(line).toContain(variable)
    expect(line).toContain(JSON.stringify(value))
  })

  it.concurrent("a routes file that does not parse stops the program with one line naming it", async () => {
    // Read by the first worker, not the primary: the primary exits with that worker's code.
    const file = routesFile("routes:\n  - name: api\n    rule: [unclosed\n")
    const exit = await runBalancerToExit({ LB_WORKERS: String(WORKERS), LB_ROUTES_FILE: file.path }).finally(
      file.remove,
    )
    const line = oneLine(exit)
    expect(line).toContain(`routes file ${file.path}: not YAML or JSON`)
    // No more workers were started to fail the same way.
    expect(exit.stdout).not.toContain("load balancer workers started")
  })
})
