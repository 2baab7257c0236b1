// Load reported by the replicas themselves (`endpoint-load-metrics`): read from each answer, kept on the replica, shown, and kept from the client unless FORWARD_LOAD_REPORTS.
import { describe, expect, it } from "vitest"
import { startCluster } from "../support/cluster.ts"
import { request } from "../support/http.ts"
import { metricsView, replicasView } from "../support/views.ts"

const REPORT = "TEXT cpu_utilization=0.42, rps_fractional=120, named_metrics.rif=3"

const reportPath = (value: string, from?: string) =>
  `/load-report?value=${encodeURIComponent(value)}${from === undefined ? "" : `&from=${from}`}`

describe("replicas' load reports", () => {
  it("records each replica's report with its age, and keeps the header from the client", async () => {
    const { lb, set } = await startCluster({ LB_ALGORITHM: "round-robin" })
    expect((await replicasView(lb.url)).every((row) => row.load_report === null)).toBe(true)

    for (let i = 0; i < 3; i++) {
      const reply = await request(`${lb.url}${reportPath(REPORT)}`)
      expect(reply.status).toBe(200)
      expect(reply.headers["endpoint-load-metrics"]).toBeUndefined()
    }

    const rows = await replicasView(lb.url)
    expect(rows.map((row) => row.id).sort()).toEqual(set.replicas.map((replica) => replica.id).sort())
    for (const row of rows) {
      expect(row.load_report).toMatchObject({ cpu_utilization: 0.42, rps: 120, named_metrics: { rif: 3 } })
      expect(row.load_report!.age_ms).toBeGreaterThanOrEqual(0)
    }
    const exposition = (await request(`${lb.url}/_lb/metrics`)).body.toString("utf8")
    for (const replica of set.replicas) {
      expect(exposition).toContain(
        `swarmguard_lb_replica_reported_in_flight{route="default",replica="${replica.origin}",replica_id="${replica.id}"} 3`,
      )
      expect(exposition).toContain(
        `swarmguard_lb_replica_reported_cpu_utilization{route="default",replica="${replica.origin}",replica_id="${replica.id}"} 0.42`,
      )
    }
  })

  it("rejects and counts a header that is not a report, keeping the last good one", async () => {
    const { lb } = await startCluster({ LB_ALGORITHM: "round-robin" }, { replicas: 1 })
    await request(`${lb.url}${reportPath(REPORT)}`)
    const garbage = await request(`${lb.url}${reportPath("TEXT cpu_utilization=lots")}`)
    expect(garbage.status).toBe(200)
    expect(garbage.headers["endpoint-load-metrics"]).toBeUndefined()

    expect((await metricsView(lb.url)).load_reports_rejected).toBe(1)
    const [row] = await replicasView(lb.url)
    expect(row!.load_report).toMatchObject({ cpu_utilization: 0.42, named_metrics: { rif: 3 } })
    expect((await request(`${lb.url}/whoami`)).status).toBe(200)
  })

  it("passes the header on with FORWARD_LOAD_REPORTS=true, and still reads it", async () => {
    const { lb } = await startCluster(
      { LB_ALGORITHM: "round-robin", FORWARD_LOAD_REPORTS: "true" },
      { replicas: 1 },
    )
    const reply = await request(`${lb.url}${reportPath(REPORT)}`)
    expect(reply.headers["endpoint-load-metrics"]).toBe(REPORT)
    const [row] = await replicasView(lb.url)
    expect(row!.load_report).toMatchObject({ rps: 120 })
  })

  it("adaptive counts the queue a replica reports, which other balancers sent it", async () => {
    const { lb, set } = await startCluster({ LB_ALGORITHM: "adaptive" }, { replicas: 2 })
    const [busy, free] = set.replicas
    // Only `busy` reports, and it reports fifty requests in flight: another balancer's, since this
    // one sends one at a time. Until it has answered once, the two take turns.
    const path = reportPath("TEXT named_metrics.rif=50", busy!.name)
    for (let i = 0; i < 2; i++) await request(`${lb.url}${path}`)
    expect(busy!.hits("/load-report")).toBe(1)
    // Its report stays fresh for a second: ten requests one after another all go to the other one.
    for (let i = 0; i < 10; i++) await request(`${lb.url}${path}`)
    expect(free!.hits("/load-report")).toBe(11)
  })
})
