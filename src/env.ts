/**
 * Typed environment variables: each is decoded once with a Schema and, when it does not fit, becomes a
 * ConfigInvalid naming the variable, the value given and what was expected.
 */
import { Config, Effect, Either, Option, ParseResult, Schema } from "effect"
import { ConfigInvalid } from "./domain/ConfigInvalid.ts"

export interface VariableType<A> {
  readonly schema: Schema.Schema<A, string>
  readonly expected: string
}

/** Reads `name`; an unset or empty variable takes `fallback` (itself decoded, so defaults are checked too). */
export const variable = <A>(
  name: string,
  type: VariableType<A>,
  fallback: string,
): Effect.Effect<A, ConfigInvalid> =>
  Config.option(Config.string(name)).pipe(
    Effect.orElseSucceed(() => Option.none<string>()),
    Effect.flatMap((given) => {
      const raw = Option.getOrElse(
        Option.filter(given, (value) => value.trim() !== ""),
        () => fallback,
      ).trim()
      return Either.match(Schema.decodeEither(type.schema)(raw), {
        onLeft: () => Effect.fail(new ConfigInvalid({ variable: name, value: raw, expected: type.expected })),
        onRight: Effect.succeed,
      })
    }),
  )

const numberWhere = (expected: string, accept: (n: number) => boolean): VariableType<number> => ({
  schema: Schema.NumberFromString.pipe(Schema.filter((n) => Number.isFinite(n) && accept(n))),
  expected,
})

export const port: VariableType<number> = numberWhere(
  "a TCP port, an integer from 0 to 65535 (0 picks a free port)",
  (n) => Number.isInteger(n) && n >= 0 && n <= 65535,
)

export const positiveInteger: VariableType<number> = numberWhere(
  "a positive integer",
  (n) => Number.isInteger(n) && n > 0,
)

export const nonNegativeInteger: VariableType<number> = numberWhere(
  "an integer of 0 or more",
  (n) => Number.isInteger(n) && n >= 0,
)

export const nonNegativeNumber: VariableType<number> = numberWhere("a number of 0 or more", (n) => n >= 0)

export const positiveNumber: VariableType<number> = numberWhere("a number greater than 0", (n) => n > 0)

export const atLeastOne: VariableType<number> = numberWhere("a number of 1 or more", (n) => n >= 1)

export const fraction: VariableType<number> = numberWhere("a number from 0 to 1", (n) => n >= 0 && n <= 1)

export const percent: VariableType<number> = numberWhere("a number from 0 to 100", (n) => n >= 0 && n <= 100)

const secondsWhere = (expected: string, accept: (n: number) => boolean): VariableType<number> => ({
  schema: numberWhere("", accept).schema.pipe(
    Schema.transform(Schema.Number, { decode: (s) => s * 1000, encode: (ms) => ms / 1000 }),
  ),
  expected,
})

/** A duration given in seconds (fractions allowed), decoded to milliseconds. */
export const seconds: VariableType<number> = secondsWhere("a positive number of seconds", (n) => n > 0)

/** Like `seconds`, where 0 turns the feature off. */
export const secondsOrZero: VariableType<number> = secondsWhere(
  "a number of seconds, 0 or more (0 turns it off)",
  (n) => n >= 0,
)

export const boolean: VariableType<boolean> = {
  schema: Schema.transformOrFail(Schema.String, Schema.Boolean, {
    strict: true,
    decode: (raw, _, ast) => {
      const value = raw.toLowerCase()
      if (["true", "1", "yes", "on"].includes(value)) return Either.right(true)
      if (["false", "0", "no", "off"].includes(value)) return Either.right(false)
      return Either.left(new ParseResult.Type(ast, raw))
    },
    encode: (value) => Either.right(String(value)),
  }),
  expected: "true or false",
}

/** One of a Schema's literal values. */
export const oneOf = <const L extends readonly [string, ...Array<string>]>(
  schema: Schema.Literal<L>,
): VariableType<L[number]> => ({
  schema: schema as Schema.Schema<L[number], string>,
  expected: `one of ${schema.literals.join(", ")}`,
})

/** Text read by `parse`, which gives undefined for text it does not accept. */
export const parsedBy = <A>(parse: (text: string) => A | undefined, expected: string): VariableType<A> => ({
  schema: Schema.transformOrFail(Schema.String, Schema.Any, {
    strict: true,
    decode: (raw, _, ast) => {
      const value = parse(raw)
      return value === undefined ? Either.left(new ParseResult.Type(ast, raw)) : Either.right(value)
    },
    encode: (_value, _, ast) => Either.left(new ParseResult.Forbidden(ast, _value, "decode only")),
  }) as unknown as Schema.Schema<A, string>,
  expected,
})

/** A TCP port, or null for nothing (unset or empty). */
export const optionalPort: VariableType<number | null> = parsedBy((text) => {
  if (text === "") return null
  const n = Number(text)
  return Number.isInteger(n) && n >= 1 && n <= 65535 ? n : undefined
}, "a TCP port from 1 to 65535, or nothing")

export const nonEmptyText: VariableType<string> = {
  schema: Schema.String.pipe(Schema.minLength(1)),
  expected: "a non-empty string",
}

/** Any text; unset or empty is the empty string, which callers read as "not given". */
export const optionalText: VariableType<string> = { schema: Schema.String, expected: "text" }

export const urlPath: VariableType<string> = {
  schema: Schema.String.pipe(Schema.pattern(/^\/[^\s?#]*$/)),
  expected: "an absolute URL path such as /metrics",
}

const commaSeparated = Schema.transform(Schema.String, Schema.Array(Schema.String), {
  strict: true,
  decode: (raw) => raw.split(",").flatMap((part) => (part.trim() === "" ? [] : [part.trim()])),
  encode: (items) => items.join(","),
})

/** Comma-separated items, each decoded by `item`; blanks between commas are ignored. */
export const list = <A>(
  item: Schema.Schema<A, string>,
  expected: string,
): VariableType<ReadonlyArray<A>> => ({
  schema: commaSeparated.pipe(Schema.compose(Schema.Array(item))),
  expected,
})

/** A host name or address, optionally with `:port`. */
export const HostAndPort = Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9._-]+(:\d{1,5})?$/))

/** An `http://host:port` URL, decoded to its origin. */
export const HttpOrigin = Schema.transformOrFail(Schema.String, Schema.String, {
  strict: true,
  decode: (raw, _, ast) => {
    const url = URL.canParse(raw) ? new URL(raw) : undefined
    return url?.protocol === "http:" && url.hostname !== ""
      ? Either.right(url.origin)
      : Either.left(new ParseResult.Type(ast, raw))
  },
  encode: Either.right,
})
