/**
 * The load a replica reports about itself in a response's `endpoint-load-metrics` header: ORCA's
 * in-band form (as Envoy and gRPC read it), in its `TEXT` or `JSON` encoding, for example
 * `TEXT cpu_utilization=0.42, rps_fractional=120, named_metrics.rif=3`. Unlike the agents' container
 * metrics, it comes from the replica's own view (its requests in flight, its share of its allowance)
 * and arrives with every answer, so every balancer sees the same figures.
 */

export const LOAD_REPORT_HEADER = "endpoint-load-metrics"

export interface LoadReport {
  /** CPU use as a share of the replica's allowance (1 = all of it). */
  readonly cpuUtilization: number | undefined
  readonly memUtilization: number | undefined
  /** Whatever utilisation the application itself reports (ORCA's `application_utilization`). */
  readonly applicationUtilization: number | undefined
  /** Requests per second the replica is serving. */
  readonly rps: number | undefined
  /** Every `named_metrics` figure, `rif` (requests in flight) among them by convention. */
  readonly named: Readonly<Record<string, number>>
}

const STANDARD: Record<string, keyof Omit<LoadReport, "named">> = {
  cpu_utilization: "cpuUtilization",
  mem_utilization: "memUtilization",
  application_utilization: "applicationUtilization",
  rps_fractional: "rps",
}

const NAMED_PREFIX = "named_metrics."

type Mutable = { -readonly [K in keyof LoadReport]: LoadReport[K] } & { named: Record<string, number> }

const empty = (): Mutable => ({
  cpuUtilization: undefined,
  memUtilization: undefined,
  applicationUtilization: undefined,
  rps: undefined,
  named: {},
})

/**
 * Sets one figure; false when the value is not a finite, non-negative number. Names this balancer does
 * not use (ORCA's `eps`, `utilization.*`, `request_cost.*`, later additions) are passed over, as a
 * tolerant reader does.
 */
const set = (report: Mutable, name: string, value: unknown): boolean => {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) return false
  const field = STANDARD[name]
  if (field !== undefined) report[field] = value
  else if (name.startsWith(NAMED_PREFIX) && name.length > NAMED_PREFIX.length) {
    report.named[name.slice(NAMED_PREFIX.length)] = value
  }
  return true
}

const parseText = (body: string): Mutable | undefined => {
  const report = empty()
  for (const pair of body.split(",")) {
    const equals = pair.indexOf("=")
    if (equals === -1) return undefined
    const value = pair.slice(equals + 1).trim()
    if (value === "" || !set(report, pair.slice(0, equals).trim(), Number(value))) return undefined
  }
  return report
}

const parseJson = (body: string): Mutable | undefined => {
  let parsed: unknown
  try {
    parsed = JSON.parse(body)
  } catch {
    return undefined
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return undefined
  const report = empty()
  for (const [name, value] of Object.entries(parsed)) {
    if (name === "named_metrics" && typeof value === "object" && value !== null && !Array.isArray(value)) {
      for (const [metric, figure] of Object.entries(value)) {
        if (!set(report, `${NAMED_PREFIX}${metric}`, figure)) return undefined
      }
    } else if (!set(report, name, value)) return undefined
  }
  return report
}

/**
 * The report in a header value, or undefined when it is not one: a format other than TEXT or JSON
 * (ORCA's binary form included), a malformed pair, a value that is not a non-negative number. A
 * report is taken whole or not at all.
 */
export const parseLoadReport = (header: string): LoadReport | undefined => {
  const trimmed = header.trim()
  const space = trimmed.indexOf(" ")
  if (space === -1) return undefined
  const format = trimmed.slice(0, space)
  const body = trimmed.slice(space + 1)
  return format === "TEXT" ? parseText(body) : format === "JSON" ? parseJson(body) : undefined
}
