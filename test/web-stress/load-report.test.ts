// The load report web-stress writes is one the balancer reads: TEXT, with cpu_utilization and named_metrics.rif.
import { afterEach, describe, expect, it, vi } from "vitest"
import { LoadReports, LOAD_REPORT_HEADER as WORKLOAD_HEADER } from "../../deploy/web-stress/load-report.ts"
import { LOAD_REPORT_HEADER, parseLoadReport } from "../../src/domain/LoadReport.ts"

afterEach(() => {
  vi.useRealTimers()
})

describe("load reports", () => {
  it("are read by the balancer: in-flight count at once, CPU utilisation once a sample is taken", () => {
    vi.useFakeTimers()
    const reports = new LoadReports({ enabled: true, readAllowance: () => ({ cores: 0.5, source: "test" }) })
    expect(WORKLOAD_HEADER).toBe(LOAD_REPORT_HEADER)
    // Before the first sample there is no utilisation to report yet, only the requests held.
    expect(parseLoadReport(reports.header(3)!)).toMatchObject({
      cpuUtilization: undefined,
      named: { rif: 3 },
    })
    vi.advanceTimersByTime(300)
    const report = parseLoadReport(reports.header(1)!)
    expect(report?.named).toEqual({ rif: 1 })
    expect(report?.cpuUtilization).toBeGreaterThanOrEqual(0)
    expect(reports.json()).toMatchObject({
      enabled: true,
      cpu_allowance_cores: 0.5,
      cpu_allowance_source: "test",
    })
    reports.stop()
  })

  it("are left out while switched off, and come back when switched on", () => {
    const reports = new LoadReports({ enabled: false, readAllowance: () => ({ cores: 1, source: "test" }) })
    expect(reports.header(2)).toBeUndefined()
    reports.enabled = true
    expect(parseLoadReport(reports.header(2)!)?.named).toEqual({ rif: 2 })
    reports.stop()
  })
})
