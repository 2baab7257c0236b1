/** Query parameters read as bounded numbers; a bad one becomes a 400 that names it. */

/** Thrown by the readers below and turned into a 400 by the router, so handlers read straight through. */
export class BadParam extends Error {
  constructor(
    readonly param: string,
    message: string,
  ) {
    super(message)
  }
}

export interface NumberSpec {
  /** Used when the parameter is absent; without it the parameter is required. */
  readonly fallback?: number
  readonly min: number
  readonly max: number
  /** The lower bound itself is not allowed (e.g. a duration must be more than 0). */
  readonly exclusiveMin?: boolean
  readonly integer?: boolean
}

const expected = (spec: NumberSpec): string => {
  const kind = spec.integer ? "an integer" : "a number"
  return spec.exclusiveMin
    ? `${kind} greater than ${spec.min}, at most ${spec.max}`
    : `${kind} from ${spec.min} to ${spec.max}`
}

export const invalidParam = (name: string, text: string, wanted: string): BadParam =>
  new BadParam(name, `query parameter ${name}=${JSON.stringify(text)} is invalid: expected ${wanted}`)

export const numberParam = (query: URLSearchParams, name: string, spec: NumberSpec): number => {
  const text = query.get(name)
  if (text === null) {
    if (spec.fallback !== undefined) return spec.fallback
    throw new BadParam(name, `query parameter ${name} is required: expected ${expected(spec)}`)
  }
  // Number("") is 0 and Number("0x10") is 16: accept plain decimal notation only.
  const value = /^\s*[+]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$/.test(text) ? Number(text) : Number.NaN
  const tooLow = spec.exclusiveMin ? value <= spec.min : value < spec.min
  if (!Number.isFinite(value) || tooLow || value > spec.max || (spec.integer && !Number.isInteger(value)))
    throw invalidParam(name, text, expected(spec))
  return value
}

/** `true` or `false`, required: a switch is never flipped by a parameter that was misspelt. */
export const booleanParam = (query: URLSearchParams, name: string): boolean => {
  const text = query.get(name)
  if (text === "true") return true
  if (text === "false") return false
  if (text === null) throw new BadParam(name, `query parameter ${name} is required: expected true or false`)
  throw invalidParam(name, text, "true or false")
}
