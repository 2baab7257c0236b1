/**
 * Merging the workers' Prometheus expositions: counters, histograms and untyped series added up,
 * gauges as configured, process families kept per worker, label values with quotes, commas and braces
 * intact, families and series in first-seen order; and every merged text a valid exposition again,
 * checked by a reader written apart from the module's.
 */
import { Counter, collectDefaultMetrics, Gauge, Registry } from "prom-client"
import { describe, expect, it } from "vitest"
import { type GaugeAggregation, mergeExpositions } from "../../layers/admin/merge-exposition.ts"

const text = (...lines: ReadonlyArray<string>) => `${lines.join("\n")}\n`

interface Sample {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}

const NAME = "[a-zA-Z_:][a-zA-Z0-9_:]*"
const META = new RegExp(`^# (HELP|TYPE) (${NAME})(?: (.*))?$`)
const SAMPLE = new RegExp(`^(${NAME})(?:\\{(.*)\\})? (\\S+)$`)
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)/y
const TYPES = new Set(["counter", "gauge", "histogram", "summary", "untyped"])

const unescapeLabel = (value: string) => value.replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c))

/** As Prometheus (Go's ParseFloat) reads: prom-client writes `Nan`, which Prometheus accepts. */
const parseNumber = (value: string) =>
  value === "+Inf"
    ? Number.POSITIVE_INFINITY
    : value === "-Inf"
      ? Number.NEGATIVE_INFINITY
      : value.toLowerCase() === "nan"
        ? Number.NaN
        : Number(value)

/**
 * Reads an exposition strictly, failing the test on anything Prometheus would refuse or that the
 * merge should never write: a blank line, a family described twice or split in two, a sample outside
 * its family, a series written twice, a value that is not a number.
 */
const parseExposition = (exposition: string): ReadonlyArray<Sample> => {
  if (exposition === "") return []
  expect(exposition.endsWith("\n") && !exposition.endsWith("\n\n")).toBe(true)
  const types = new Map<string, string>()
  const finished = new Set<string>()
  const series = new Set<string>()
  const samples: Array<Sample> = []
  let family: string | undefined
  for (const line of exposition.slice(0, -1).split("\n")) {
    const meta = META.exec(line)
    if (meta !== null) {
      const [, keyword, name] = meta as unknown as [string, string, string, string | undefined]
      if (name !== family) {
        expect(finished.has(name), `${name} written in two places`).toBe(false)
        if (family !== undefined) finished.add(family)
        family = name
      }
      if (keyword === "TYPE") {
        expect(types.has(name), `second TYPE for ${name}`).toBe(false)
        expect(TYPES.has(meta[3] ?? "")).toBe(true)
        types.set(name, meta[3]!)
      }
      continue
    }
    const sample = SAMPLE.exec(line)
    expect(sample, `not a sample: ${line}`).not.toBeNull()
    const [, name, labelText, value] = sample as unknown as [string, string, string | undefined, string]
    const type = family === undefined ? undefined : types.get(family)
    const suffixes =
      type === "histogram"
        ? ["", "_bucket", "_sum", "_count"]
        : type === "summary"
          ? ["", "_sum", "_count"]
          : [""]
    if (!suffixes.some((suffix) => `${family}${suffix}` === name)) {
      // An untyped sample with no HELP or TYPE line is a family of its own.
      expect(finished.has(name), `${name} written in two places`).toBe(false)
      if (family !== undefined) finished.add(family)
      family = name
    }
    const labels: Record<string, string> = {}
    LABEL.lastIndex = 0
    while (labelText !== undefined && LABEL.lastIndex < labelText.length) {
      const label = LABEL.exec(labelText)
      expect(label, `bad labels: ${labelText}`).not.toBeNull()
      expect(labels[label![1]!], `label ${label![1]} twice`).toBeUndefined()
      labels[label![1]!] = unescapeLabel(label![2]!)
    }
    const key = JSON.stringify([name, Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : 1))])
    expect(series.has(key), `series twice: ${line}`).toBe(false)
    series.add(key)
    const number = parseNumber(value)
    expect(Number.isNaN(number) && value.toLowerCase() !== "nan", `not a number: ${value}`).toBe(false)
    samples.push({ name, labels, value: number })
  }
  return samples
}

/** The merge, checked to be a valid exposition before the test looks at it. */
const merge = (parts: ReadonlyArray<string>, gauges: Readonly<Record<string, GaugeAggregation>> = {}) => {
  const merged = mergeExpositions(
    parts.map((part, i) => ({ worker: i + 1, text: part })),
    gauges,
  )
  parseExposition(merged)
  return merged
}

/** The value of the series named `name` with exactly `labels`, in any order. */
const seriesValue = (samples: ReadonlyArray<Sample>, name: string, labels: Record<string, string> = {}) => {
  const found = samples.filter(
    (sample) =>
      sample.name === name &&
      Object.keys(sample.labels).length === Object.keys(labels).length &&
      Object.entries(labels).every(([label, value]) => sample.labels[label] === value),
  )
  expect(found, `${name} ${JSON.stringify(labels)}`).toHaveLength(1)
  return found[0]!.value
}

describe("mergeExpositions", () => {
  it("adds each counter series up across workers, whatever order its labels are written in", () => {
    const worker1 = text(
      "# HELP requests_total Requests",
      "# TYPE requests_total counter",
      'requests_total{route="api",outcome="2xx"} 3',
      'requests_total{route="api",outcome="5xx"} 1',
    )
    const worker2 = text(
      "# HELP requests_total Requests",
      "# TYPE requests_total counter",
      'requests_total{outcome="2xx",route="api"} 4',
      'requests_total{route="web",outcome="2xx"} 2',
    )
    expect(merge([worker1, worker2])).toBe(
      text(
        "# HELP requests_total Requests",
        "# TYPE requests_total counter",
        'requests_total{route="api",outcome="2xx"} 7',
        'requests_total{route="api",outcome="5xx"} 1',
        'requests_total{route="web",outcome="2xx"} 2',
      ),
    )
  })

  it("adds histogram buckets, sums and counts up per label set, each set's lines kept together", () => {
    const histogram = (
      rows: ReadonlyArray<readonly [route: string, buckets: [number, number], sum: number]>,
    ) =>
      text(
        "# HELP wait_seconds Wait",
        "# TYPE wait_seconds histogram",
        ...rows.flatMap(([route, [fast, slow], sum]) => [
          `wait_seconds_bucket{le="0.001",route="${route}"} ${fast}`,
          `wait_seconds_bucket{le="+Inf",route="${route}"} ${slow}`,
          `wait_seconds_sum{route="${route}"} ${sum}`,
          `wait_seconds_count{route="${route}"} ${slow}`,
        ]),
      )
    // Worker 2 knows a route worker 1 has not seen: its lines come after the whole of route a.
    const merged = merge([
      histogram([["a", [1, 2], 0.5]]),
      histogram([
        ["b", [0, 1], 2],
        ["a", [3, 3], 0.25],
      ]),
    ])
    expect(merged).toBe(
      histogram([
        ["a", [4, 5], 0.75],
        ["b", [0, 1], 2],
      ]),
    )
  })

  it("merges gauges by the table's aggregation, adding up those it does not name", () => {
    const gauges = (leases: number, age: number, healthy: number) =>
      text(
        "# TYPE leases gauge",
        `leases{replica="r1"} ${leases}`,
        "# TYPE age_seconds gauge",
        `age_seconds{replica="r1"} ${age}`,
        "# TYPE healthy gauge",
        `healthy{replica="r1"} ${healthy}`,
      )
    const merged = merge([gauges(2, 5, 1), gauges(3, 1.5, 0), gauges(1, 9, 1)], {
      age_seconds: "min",
      healthy: "max",
    })
    expect(merged).toBe(gauges(6, 1.5, 1))
  })

  it("counts a series only where a worker has it, not as zero where it has not", () => {
    const samples = parseExposition(
      merge(
        [
          text("# TYPE age_seconds gauge", 'age_seconds{replica="r1"} 4', "# TYPE hits_total counter"),
          text(
            "# TYPE age_seconds gauge",
            'age_seconds{replica="r1"} 7',
            'age_seconds{replica="r2"} 3',
            "# TYPE hits_total counter",
            "hits_total 5",
          ),
        ],
        { age_seconds: "max" },
      ),
    )
    expect(seriesValue(samples, "age_seconds", { replica: "r1" })).toBe(7)
    expect(seriesValue(samples, "age_seconds", { replica: "r2" })).toBe(3)
    expect(seriesValue(samples, "hits_total")).toBe(5)
    expect(
      merge([text("# TYPE age_seconds gauge", 'age_seconds{replica="r2"} 3'), ""], { age_seconds: "min" }),
    ).toBe(text("# TYPE age_seconds gauge", 'age_seconds{replica="r2"} 3'))
  })

  it("keeps process_ and nodejs_ families per worker, labelled with its number first", () => {
    const processText = (cpu: number, gc: number) =>
      text(
        "# HELP process_cpu_user_seconds_total User CPU time",
        "# TYPE process_cpu_user_seconds_total counter",
        `process_cpu_user_seconds_total ${cpu}`,
        "# HELP nodejs_gc_duration_seconds GC duration",
        "# TYPE nodejs_gc_duration_seconds histogram",
        `nodejs_gc_duration_seconds_bucket{le="0.01",kind="minor"} ${gc}`,
        `nodejs_gc_duration_seconds_bucket{le="+Inf",kind="minor"} ${gc}`,
        `nodejs_gc_duration_seconds_sum{kind="minor"} 0.002`,
        `nodejs_gc_duration_seconds_count{kind="minor"} ${gc}`,
      )
    expect(merge([processText(1.5, 3), processText(2, 4)])).toBe(
      text(
        "# HELP process_cpu_user_seconds_total User CPU time",
        "# TYPE process_cpu_user_seconds_total counter",
        'process_cpu_user_seconds_total{worker="1"} 1.5',
        'process_cpu_user_seconds_total{worker="2"} 2',
        "# HELP nodejs_gc_duration_seconds GC duration",
        "# TYPE nodejs_gc_duration_seconds histogram",
        'nodejs_gc_duration_seconds_bucket{worker="1",le="0.01",kind="minor"} 3',
        'nodejs_gc_duration_seconds_bucket{worker="1",le="+Inf",kind="minor"} 3',
        'nodejs_gc_duration_seconds_sum{worker="1",kind="minor"} 0.002',
        'nodejs_gc_duration_seconds_count{worker="1",kind="minor"} 3',
        'nodejs_gc_duration_seconds_bucket{worker="2",le="0.01",kind="minor"} 4',
        'nodejs_gc_duration_seconds_bucket{worker="2",le="+Inf",kind="minor"} 4',
        'nodejs_gc_duration_seconds_sum{worker="2",kind="minor"} 0.002',
        'nodejs_gc_duration_seconds_count{worker="2",kind="minor"} 4',
      ),
    )
  })

  it("reads label values with escaped quotes, backslashes, newlines, commas and braces, and writes them back", () => {
    const value = String.raw`say \"hi\", {x=\"1\"} \\ back\nline`
    const merged = merge([
      text("# TYPE odd_total counter", `odd_total{route="${value}",le="a} 9"} 1`),
      text("# TYPE odd_total counter", `odd_total{le="a} 9",route="${value}"} 2`),
    ])
    expect(merged).toBe(text("# TYPE odd_total counter", `odd_total{route="${value}",le="a} 9"} 3`))
    expect(parseExposition(merged)[0]!.labels).toEqual({
      route: 'say "hi", {x="1"} \\ back\nline',
      le: "a} 9",
    })
  })

  it("writes each family once, in the order the workers first wrote them", () => {
    const family = (name: string) => [`# HELP ${name} ${name}`, `# TYPE ${name} counter`, `${name} 1`]
    const merged = merge([
      text(...family("a"), ...family("b")),
      text(...family("c"), ...family("a"), ...family("d")),
    ])
    expect(merged.split("\n").filter((line) => line.startsWith("# TYPE"))).toEqual(
      ["a", "b", "c", "d"].map((name) => `# TYPE ${name} counter`),
    )
    expect(seriesValue(parseExposition(merged), "a")).toBe(2)
  })

  it("reads NaN, infinities and exponents, writes numbers as JavaScript does, and drops timestamps", () => {
    const part = (a: string, b: string, c: string, d: string) =>
      text("# TYPE g gauge", `g{k="a"} ${a}`, `g{k="b"} ${b}`, `g{k="c"} ${c} 1700000000000`, `u ${d}`)
    expect(merge([part("1e-7", "+Inf", "NaN", "2.5E+3"), part("2e-7", "1", "1", "-Inf")])).toBe(
      text("# TYPE g gauge", `g{k="a"} ${1e-7 + 2e-7}`, 'g{k="b"} +Inf', 'g{k="c"} NaN', "u -Inf"),
    )
  })

  it("gives back a single worker's text as it was", () => {
    const exposition = text(
      "# HELP swarmguard_lb_requests_total Attempts",
      "# TYPE swarmguard_lb_requests_total counter",
      'swarmguard_lb_requests_total{route="api",replica="web.1",replica_id="abc",status_class="2xx",algorithm="lease"} 12',
      "# HELP swarmguard_lb_active_leases In flight",
      "# TYPE swarmguard_lb_active_leases gauge",
      'swarmguard_lb_active_leases{route="api",replica="web.1",replica_id="abc"} 0',
      "# HELP swarmguard_lb_routing_decision_seconds Routing time",
      "# TYPE swarmguard_lb_routing_decision_seconds histogram",
      'swarmguard_lb_routing_decision_seconds_bucket{le="0.000001",route="api",algorithm="lease"} 3',
      'swarmguard_lb_routing_decision_seconds_bucket{le="+Inf",route="api",algorithm="lease"} 12',
      'swarmguard_lb_routing_decision_seconds_sum{route="api",algorithm="lease"} 0.000123',
      'swarmguard_lb_routing_decision_seconds_count{route="api",algorithm="lease"} 12',
      "# HELP latency Latency",
      "# TYPE latency summary",
      'latency{quantile="0.5"} 0.25',
      "latency_sum 3",
      "latency_count 12",
      "untyped_thing 7",
    )
    expect(merge([exposition], { swarmguard_lb_active_leases: "max" })).toBe(exposition)
  })

  it("gives an empty text for no workers, and names the worker and line of a malformed sample", () => {
    expect(mergeExpositions([], {})).toBe("")
    expect(mergeExpositions([{ worker: 1, text: "\n\n" }], {})).toBe("")
    expect(() =>
      mergeExpositions(
        [
          { worker: 1, text: "a 1\n" },
          { worker: 2, text: '# TYPE a counter\na{route="open} 1\n' },
        ],
        {},
      ),
    ).toThrow(/worker 2, line 2: unterminated value of label route/)
    expect(() => mergeExpositions([{ worker: 3, text: "a one\n" }], {})).toThrow(
      /worker 3, line 1: not a number/,
    )
  })

  it("merges what prom-client writes", async () => {
    const odd = 'quote " comma , brace } back \\ newline \n'
    const registry = async (requests: number, inFlight: number) => {
      const registry = new Registry()
      const counter = new Counter({
        name: "app_requests_total",
        help: "Requests \\ seen\nso far",
        labelNames: ["route", "outcome"],
        registers: [registry],
      })
      counter.inc({ route: "api", outcome: "2xx" }, requests)
      counter.inc({ route: odd, outcome: "5xx" }, 1)
      const gauge = new Gauge({
        name: "app_in_flight",
        help: "In flight",
        labelNames: ["route"],
        registers: [registry],
      })
      gauge.set({ route: "api" }, inFlight)
      return registry.metrics()
    }
    const texts = [await registry(3, 5), await registry(4, 2)]
    // prom-client separates families by a blank line, which the merge does not keep.
    const withoutBlankLines = texts[0]!.replace(/\n\n/g, "\n")
    expect(merge([texts[0]!])).toBe(withoutBlankLines)

    const samples = parseExposition(merge(texts, { app_in_flight: "max" }))
    expect(seriesValue(samples, "app_requests_total", { route: "api", outcome: "2xx" })).toBe(7)
    expect(seriesValue(samples, "app_requests_total", { route: odd, outcome: "5xx" })).toBe(2)
    expect(seriesValue(samples, "app_in_flight", { route: "api" })).toBe(5)
    expect(merge(texts, {})).toContain('app_in_flight{route="api"} 7')
  })

  it("keeps prom-client's default process metrics apart per worker", async () => {
    const texts = await Promise.all(
      [1, 2].map(() => {
        const registry = new Registry()
        collectDefaultMetrics({ register: registry })
        return registry.metrics()
      }),
    )
    const merged = merge(texts)
    const samples = parseExposition(merged)
    const perWorker = texts.map((part) => parseExposition(part.replace(/\n\n+/g, "\n")).length)
    expect(samples).toHaveLength(perWorker[0]! + perWorker[1]!)
    expect(samples.filter((sample) => sample.labels.worker === "1")).toHaveLength(perWorker[0]!)
    expect(samples.filter((sample) => sample.labels.worker === "2")).toHaveLength(perWorker[1]!)
    // prom-client's `Nan` (event loop lag before its first sample) comes out as Prometheus spells it.
    expect(merged).not.toMatch(/ Nan$/m)
    expect(merged).toMatch(/^nodejs_version_info\{worker="2",version="v/m)
  })
})
