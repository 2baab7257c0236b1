/** Reading a replica's `endpoint-load-metrics` header: ORCA's TEXT and JSON forms, and what is refused. */
import { describe, expect, it } from "@effect/vitest"
import { parseLoadReport } from "../../src/domain/LoadReport.ts"

describe("parseLoadReport", () => {
  it("reads the TEXT form: standard figures and named metrics", () => {
    expect(
      parseLoadReport(
        "TEXT cpu_utilization=0.42, mem_utilization=0.3, rps_fractional=120, named_metrics.rif=3",
      ),
    ).toEqual({
      cpuUtilization: 0.42,
      memUtilization: 0.3,
      applicationUtilization: undefined,
      rps: 120,
      named: { rif: 3 },
    })
  })

  it("reads the JSON form, named metrics as an object", () => {
    expect(
      parseLoadReport(
        'JSON {"cpu_utilization":0.5,"application_utilization":0.7,"named_metrics":{"rif":4,"queue":2}}',
      ),
    ).toEqual({
      cpuUtilization: 0.5,
      memUtilization: undefined,
      applicationUtilization: 0.7,
      rps: undefined,
      named: { rif: 4, queue: 2 },
    })
  })

  it("passes over ORCA figures it does not use, as a tolerant reader", () => {
    expect(parseLoadReport("TEXT eps=2, utilization.gpu=0.1, cpu_utilization=0.2")?.cpuUtilization).toBe(0.2)
  })

  it.each([
    ["an empty value", ""],
    ["no format", "cpu_utilization=0.4"],
    ["the binary form", "BIN CgkJAAAAAAAA4D8="],
    ["a pair without a value", "TEXT cpu_utilization="],
    ["a pair without =", "TEXT cpu_utilization"],
    ["a word for a number", "TEXT cpu_utilization=high"],
    ["a negative figure", "TEXT named_metrics.rif=-1"],
    ["an infinite figure", "TEXT cpu_utilization=Infinity"],
    ["broken JSON", "JSON {cpu_utilization:0.4"],
    ["a JSON array", "JSON [0.4]"],
    ["a JSON string figure", 'JSON {"cpu_utilization":"0.4"}'],
    ["a JSON named metric that is not a number", 'JSON {"named_metrics":{"rif":null}}'],
  ])("refuses %s whole", (_, header) => {
    expect(parseLoadReport(header)).toBeUndefined()
  })
})
