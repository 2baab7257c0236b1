/**
 * One Prometheus exposition (text format 0.0.4) for the whole balancer, from the expositions of its
 * worker processes: a scrape of `GET /_lb/metrics` must answer for every worker, not for whichever one
 * the connection landed on. Each series is added up across workers (gauges as the caller chooses), but
 * `process_*` and `nodejs_*` families describe one process each, so they are kept apart by a `worker`
 * label instead.
 */

export type GaugeAggregation = "sum" | "min" | "max"

const COMBINE: Readonly<Record<GaugeAggregation, (a: number, b: number) => number>> = {
  sum: (a, b) => a + b,
  min: Math.min,
  max: Math.max,
}

interface Series {
  /** The sample name: the family's, or with a histogram's or summary's suffix. */
  readonly name: string
  /** `a="x",b="y"` in the order first written, values still escaped. */
  readonly labels: string
  value: number
}

interface Family {
  readonly name: string
  help: string | undefined
  type: string | undefined
  combine: (a: number, b: number) => number
  readonly perProcess: boolean
  /**
   * By sample name and sorted labels, in first-seen order: the order each worker writes a histogram's
   * lines in (one label set's buckets, sum and count together) is the order they come out in.
   */
  readonly series: Map<string, Series>
}

const isPerProcess = (name: string) => name.startsWith("process_") || name.startsWith("nodejs_")

const isBlank = (code: number) => code === 32 || code === 9

/** `[a-zA-Z_:][a-zA-Z0-9_:]*`; label names may not have `:`, but no writer puts one there. */
const isNameChar = (code: number, first: boolean) =>
  (code >= 97 && code <= 122) ||
  (code >= 65 && code <= 90) ||
  code === 95 ||
  code === 58 ||
  (!first && code >= 48 && code <= 57)

const skipBlanks = (line: string, i: number) => {
  while (i < line.length && isBlank(line.charCodeAt(i))) i++
  return i
}

const scanName = (line: string, i: number) => {
  let end = i
  while (end < line.length && isNameChar(line.charCodeAt(end), end === i)) end++
  return end
}

class ParseError extends Error {}

/**
 * Reads `{a="x",b="y"}` from `i` (just past the `{`) into `pairs` as written (`a="x"`, value still
 * escaped: the 0.0.4 escapes are canonical, so equal text is an equal value, and it prints back as is).
 * Returns the index after `}`.
 */
const scanLabels = (line: string, i: number, pairs: Array<string>): number => {
  for (;;) {
    i = skipBlanks(line, i)
    if (line.charCodeAt(i) === 125 /* } */) return i + 1
    const nameEnd = scanName(line, i)
    if (nameEnd === i) throw new ParseError("expected a label name")
    const name = line.slice(i, nameEnd)
    i = skipBlanks(line, nameEnd)
    if (line.charCodeAt(i) !== 61 /* = */) throw new ParseError(`expected = after label ${name}`)
    i = skipBlanks(line, i + 1)
    if (line.charCodeAt(i) !== 34 /* " */) throw new ParseError(`expected " to open label ${name}`)
    const valueStart = i + 1
    // Commas, braces and escaped quotes inside the quotes are part of the value.
    for (i = valueStart; i < line.length && line.charCodeAt(i) !== 34; i++) {
      if (line.charCodeAt(i) === 92 /* \ */) i++
    }
    if (i >= line.length) throw new ParseError(`unterminated value of label ${name}`)
    pairs.push(`${name}="${line.slice(valueStart, i)}"`)
    i = skipBlanks(line, i + 1)
    const next = line.charCodeAt(i)
    if (next === 44 /* , */) i++
    else if (next !== 125) throw new ParseError(`expected , or } after label ${name}`)
  }
}

const parseValue = (text: string): number => {
  const value = Number(text)
  if (!Number.isNaN(value) && text !== "") return value
  // Go's ParseFloat, which Prometheus reads with, spells infinity `Inf` in any case, with or without a sign.
  switch (text.toLowerCase()) {
    case "nan":
      return Number.NaN
    case "inf":
    case "+inf":
      return Number.POSITIVE_INFINITY
    case "-inf":
      return Number.NEGATIVE_INFINITY
  }
  throw new ParseError(`not a number: ${text}`)
}

const formatValue = (value: number) =>
  value === Number.POSITIVE_INFINITY ? "+Inf" : value === Number.NEGATIVE_INFINITY ? "-Inf" : String(value)

/** The family a sample named `name` belongs to, when it is `family`'s. */
const belongsTo = (family: Family, name: string): boolean => {
  if (name === family.name) return true
  if (family.type !== "histogram" && family.type !== "summary") return false
  if (!name.startsWith(family.name)) return false
  const suffix = name.slice(family.name.length)
  return suffix === "_sum" || suffix === "_count" || (suffix === "_bucket" && family.type === "histogram")
}

/** Merges the workers' expositions into one; `gauges` names how each gauge family adds up (default sum). */
export const mergeExpositions = (
  parts: ReadonlyArray<{ readonly worker: number; readonly text: string }>,
  gauges: Readonly<Record<string, GaugeAggregation>>,
): string => {
  const families = new Map<string, Family>()

  const familyOf = (name: string): Family => {
    let family = families.get(name)
    if (family === undefined) {
      family = {
        name,
        help: undefined,
        type: undefined,
        combine: COMBINE.sum,
        perProcess: isPerProcess(name),
        series: new Map(),
      }
      families.set(name, family)
    }
    return family
  }

  const setType = (family: Family, type: string) => {
    if (family.type !== undefined) return
    family.type = type
    // hasOwn: a family may be named like an Object.prototype member (`constructor`).
    if (type === "gauge" && Object.hasOwn(gauges, family.name)) family.combine = COMBINE[gauges[family.name]!]
  }

  /** Reads one `# ...` line; returns the family it describes, if it is a HELP or TYPE line. */
  const readComment = (line: string): Family | undefined => {
    const keywordStart = skipBlanks(line, 1)
    const keyword = line.slice(keywordStart, keywordStart + 4)
    if ((keyword !== "HELP" && keyword !== "TYPE") || !isBlank(line.charCodeAt(keywordStart + 4))) {
      return undefined // any other comment says nothing about the samples
    }
    const nameStart = skipBlanks(line, keywordStart + 4)
    const nameEnd = scanName(line, nameStart)
    if (nameEnd === nameStart) throw new ParseError(`${keyword} without a metric name`)
    const family = familyOf(line.slice(nameStart, nameEnd))
    const rest = line.slice(skipBlanks(line, nameEnd))
    if (keyword === "HELP") family.help ??= rest
    else if (rest === "") throw new ParseError("TYPE without a type")
    else setType(family, rest)
    return family
  }

  const readSample = (line: string, worker: number, current: Family | undefined) => {
    const nameEnd = scanName(line, 0)
    if (nameEnd === 0) throw new ParseError("expected a metric name")
    const name = line.slice(0, nameEnd)
    const pairs: Array<string> = []
    let i = skipBlanks(line, nameEnd)
    if (line.charCodeAt(i) === 123 /* { */) i = skipBlanks(line, scanLabels(line, i + 1, pairs))
    let valueEnd = i
    while (valueEnd < line.length && !isBlank(line.charCodeAt(valueEnd))) valueEnd++
    // What follows the value is a timestamp, dropped: prom-client never writes one.
    const value = parseValue(line.slice(i, valueEnd))

    // A sample with no HELP or TYPE of its own is an untyped family of its own name.
    const family = current !== undefined && belongsTo(current, name) ? current : familyOf(name)
    if (family.perProcess) {
      const existing = pairs.findIndex((pair) => pair.startsWith('worker="'))
      if (existing !== -1) pairs.splice(existing, 1) // the worker number is what tells processes apart
      pairs.unshift(`worker="${worker}"`)
    }
    const labels = pairs.join(",")
    // Label order does not make a different series, so the key has the pairs sorted. Names are distinct
    // and end at `=`, so sorting the `name="value"` texts orders them by name alone.
    const key = pairs.length > 1 ? `${name}{${pairs.sort().join(",")}}` : `${name}{${labels}}`

    const known = family.series.get(key)
    if (known === undefined) family.series.set(key, { name, labels, value })
    else known.value = family.combine(known.value, value)
  }

  for (const { worker, text } of parts) {
    let current: Family | undefined
    let lineNumber = 0
    for (let start = 0; start < text.length; ) {
      let end = text.indexOf("\n", start)
      if (end === -1) end = text.length
      const line = text.slice(start, end).trim()
      start = end + 1
      lineNumber++
      if (line === "") continue
      try {
        if (line.charCodeAt(0) === 35 /* # */) current = readComment(line) ?? current
        else readSample(line, worker, current)
      } catch (error) {
        if (!(error instanceof ParseError)) throw error
        throw new Error(`worker ${worker}, line ${lineNumber}: ${error.message}: ${line}`)
      }
    }
  }

  const lines: Array<string> = []
  for (const family of families.values()) {
    if (family.help !== undefined) {
      lines.push(family.help === "" ? `# HELP ${family.name}` : `# HELP ${family.name} ${family.help}`)
    }
    if (family.type !== undefined) lines.push(`# TYPE ${family.name} ${family.type}`)
    for (const { name, labels, value } of family.series.values()) {
      lines.push(labels === "" ? `${name} ${formatValue(value)}` : `${name}{${labels}} ${formatValue(value)}`)
    }
  }
  return lines.length === 0 ? "" : `${lines.join("\n")}\n`
}
