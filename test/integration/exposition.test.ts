// `GET /_lb/metrics`: the balancer's Prometheus families, counted per replica with bounded label sets.
import { describe, expect, it } from "vitest"
import { useCluster } from "../support/cluster.ts"
import { request } from "../support/http.ts"
import { metricsView } from "../support/views.ts"

interface Sample {
  readonly name: string
  readonly labels: Record<string, string>
  readonly value: number
}

/** The text format's sample lines; label values here never hold commas or quotes. */
const parse = (text: string): ReadonlyArray<Sample> =>
  text
    .split("\n")
    .filter((line) => line !== "" && !line.startsWith("#"))
    .map((line) => {
      const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
      if (match === null) throw new Error(`not a sample line: ${line}`)
      const labels = Object.fromEntries(
        (match[2] ?? "")
          .split(",")
          .filter(Boolean)
          .map((pair) => {
            const [key, quoted] = pair.split("=") as [string, string]
            return [key, quoted.slice(1, -1)]
          }),
      )
      return { name: match[1]!, labels, value: Number(match[3]) }
    })

const scrape = async (url: string) => {
  const reply = await request(`${url}/_lb/metrics`)
  expect(reply.status).toBe(200)
  expect(reply.headers["content-type"]).toMatch(/^text\/plain; version=0\.0\.4/)
  const text = reply.body.toString("utf8")
  return { text, samples: parse(text) }
}

const FAMILIES = [
  "swarmguard_lb_requests_total",
  "swarmguard_lb_routing_decision_seconds",
  "swarmguard_lb_active_leases",
  "swarmguard_lb_replica_healthy",
  "swarmguard_lb_fallback_decisions_total",
  "swarmguard_lb_panic_decisions_total",
  "swarmguard_lb_retries_total",
  "swarmguard_lb_failures_total",
  "process_cpu_user_seconds_total",
  "nodejs_eventloop_lag_seconds",
]

describe("GET /_lb/metrics", () => {
  const cluster = useCluster({ LB_ALGORITHM: "round-robin" })

  it("exports every family, per replica, with the same series however many requests", async () => {
    for (let i = 0; i < 6; i++) await request(`${cluster.lb.url}/whoami?n=${i}`)
    // replica-1 drops the connection: that attempt counts as `error` on it, the retry elsewhere.
    await request(`${cluster.lb.url}/reset?on=replica-1`)
    const first = await scrape(cluster.lb.url)
    for (const family of FAMILIES) expect(first.text).toContain(`# TYPE ${family} `)

    const ids = cluster.set.replicas.map((replica) => replica.id).sort()
    const requests = first.samples.filter((sample) => sample.name === "swarmguard_lb_requests_total")
    for (const sample of requests) {
      expect(Object.keys(sample.labels).sort()).toEqual([
        "algorithm",
        "replica",
        "replica_id",
        "route",
        "status_class",
      ])
      expect(sample.labels.algorithm).toBe("round-robin")
      expect(sample.labels.route).toBe("default")
      expect(ids).toContain(sample.labels.replica_id)
      expect(["2xx", "3xx", "4xx", "5xx", "error", "aborted"]).toContain(sample.labels.status_class)
    }
    const total = (samples: ReadonlyArray<Sample>, statusClass: string) =>
      samples
        .filter((sample) => sample.name === "swarmguard_lb_requests_total")
        .filter((sample) => sample.labels.status_class === statusClass)
        .reduce((sum, sample) => sum + sample.value, 0)
    expect(total(first.samples, "2xx")).toBe(7)
    const broken = cluster.set.replicas[0]!
    expect(
      requests.find(
        (sample) => sample.labels.replica_id === broken.id && sample.labels.status_class === "error",
      )?.value,
    ).toBe(1)
    expect(first.samples.find((sample) => sample.name === "swarmguard_lb_retries_total")?.value).toBe(1)
    // The counts agree with the JSON view's.
    const json = await metricsView(cluster.lb.url)
    const count = first.samples.find(
      (sample) => sample.name === "swarmguard_lb_routing_decision_seconds_count",
    )
    expect(count?.value).toBe(Object.values(json.routing_decisions).reduce((sum, n) => sum + n, 0))

    for (const family of ["swarmguard_lb_active_leases", "swarmguard_lb_replica_healthy"]) {
      const rows = first.samples.filter((sample) => sample.name === family)
      expect(rows.map((row) => row.labels.replica_id).sort()).toEqual(ids)
      for (const row of rows) {
        expect(Object.keys(row.labels).sort()).toEqual(["replica", "replica_id", "route"])
      }
    }
    expect(
      first.samples.filter((s) => s.name === "swarmguard_lb_replica_healthy").every((s) => s.value === 1),
    ).toBe(true)
    // Round-robin over static replicas reads no metrics: no age or score to report.
    expect(first.text).not.toContain("swarmguard_lb_replica_load_score{")

    // Bounded: more requests, on other paths, add no series.
    for (let i = 0; i < 20; i++) await request(`${cluster.lb.url}/other/${i}?id=${i}`)
    const second = await scrape(cluster.lb.url)
    const names = (samples: ReadonlyArray<Sample>) =>
      samples
        .filter((sample) => sample.name.startsWith("swarmguard_lb_"))
        .map((sample) => `${sample.name}${JSON.stringify(sample.labels)}`)
        .sort()
    expect(names(second.samples)).toEqual(names(first.samples))
    expect(total(second.samples, "2xx")).toBe(27)
  })

  it("answers 405 to POST", async () => {
    const reply = await request(`${cluster.lb.url}/_lb/metrics`, { method: "POST", body: Buffer.from("") })
    expect(reply.status).toBe(405)
  })
})
