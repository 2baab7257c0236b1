/**
 * A route's rule, in the syntax Swarm users already write for Traefik: matchers such as
 * Host(`a.example`) and PathPrefix(`/api`), combined with `&&`, `||`, `!` and parentheses (`!` binds
 * tightest, then `&&`, then `||`). Values are quoted with backticks or double quotes. This file turns
 * the text into a tree, or into one error naming the column where the text stops making sense.
 */
import { Data, Either } from "effect"

/** The matchers a rule may use, and how many values each takes. */
const MATCHERS = {
  Host: "one or more",
  Path: "one or more",
  PathPrefix: "one or more",
  Method: "one or more",
  Header: "two",
} as const

export type MatcherName = keyof typeof MATCHERS

export type Rule =
  | { readonly _tag: "Matcher"; readonly name: MatcherName; readonly values: ReadonlyArray<string> }
  | { readonly _tag: "Not"; readonly rule: Rule }
  | { readonly _tag: "And"; readonly left: Rule; readonly right: Rule }
  | { readonly _tag: "Or"; readonly left: Rule; readonly right: Rule }

export class RuleSyntaxError extends Data.TaggedError("RuleSyntaxError")<{
  /** 1-based, in the rule's text. */
  readonly column: number
  readonly message: string
}> {}

type Token =
  | { readonly kind: "name"; readonly text: string; readonly at: number }
  | { readonly kind: "string"; readonly text: string; readonly at: number }
  | { readonly kind: "(" | ")" | "," | "&&" | "||" | "!" | "end"; readonly at: number }

/** Thrown inside this module only, and turned into the Either's error at its edge. */
class Stop {
  constructor(
    readonly at: number,
    readonly message: string,
  ) {}
}

const isNameChar = (char: string) => /[A-Za-z0-9_]/.test(char)

/** A quoted value: backticks hold any text but a backtick; double quotes allow `\"` and `\\`. */
const readString = (text: string, start: number): { value: string; end: number } => {
  const quote = text[start]!
  let value = ""
  for (let i = start + 1; i < text.length; i++) {
    const char = text[i]!
    if (char === quote) return { value, end: i + 1 }
    if (quote === '"' && char === "\\" && i + 1 < text.length) {
      value += text[++i]
      continue
    }
    value += char
  }
  throw new Stop(start, `the value opened here with ${quote} is never closed`)
}

const tokenize = (text: string): ReadonlyArray<Token> => {
  const tokens: Array<Token> = []
  let i = 0
  while (i < text.length) {
    const char = text[i]!
    if (/\s/.test(char)) {
      i++
    } else if (char === "`" || char === '"') {
      const { value, end } = readString(text, i)
      tokens.push({ kind: "string", text: value, at: i })
      i = end
    } else if (char === "&" || char === "|") {
      if (text[i + 1] !== char) throw new Stop(i, `expected ${char}${char}`)
      tokens.push({ kind: char === "&" ? "&&" : "||", at: i })
      i += 2
    } else if (char === "(" || char === ")" || char === "," || char === "!") {
      tokens.push({ kind: char, at: i })
      i++
    } else if (isNameChar(char)) {
      let end = i
      while (end < text.length && isNameChar(text[end]!)) end++
      tokens.push({ kind: "name", text: text.slice(i, end), at: i })
      i = end
    } else {
      throw new Stop(i, `unexpected ${char}`)
    }
  }
  tokens.push({ kind: "end", at: text.length })
  return tokens
}

const describeToken = (token: Token): string =>
  token.kind === "end"
    ? "the end of the rule"
    : token.kind === "name"
      ? token.text
      : token.kind === "string"
        ? `the value \`${token.text}\``
        : token.kind

const parseTokens = (tokens: ReadonlyArray<Token>): Rule => {
  let next = 0
  const peek = () => tokens[next]!
  const expect = (kind: Token["kind"], what: string): Token => {
    const token = peek()
    if (token.kind !== kind) throw new Stop(token.at, `expected ${what}, found ${describeToken(token)}`)
    next++
    return token
  }

  const matcher = (): Rule => {
    const token = expect("name", "a matcher, ! or (") as Extract<Token, { kind: "name" }>
    if (!Object.hasOwn(MATCHERS, token.text)) {
      const known = Object.keys(MATCHERS).join(", ")
      throw new Stop(token.at, `unknown matcher ${token.text} (known: ${known})`)
    }
    const name = token.text as MatcherName
    expect("(", `( after ${name}`)
    const values: Array<string> = []
    for (;;) {
      const value = expect("string", "a quoted value") as Extract<Token, { kind: "string" }>
      values.push(value.text)
      if (peek().kind !== ",") break
      next++
    }
    expect(")", `, or ) in ${name}(…)`)
    if (MATCHERS[name] === "two" && values.length !== 2) {
      throw new Stop(token.at, `${name} takes two values (name, value), got ${values.length}`)
    }
    for (const [index, value] of values.entries()) checkValue(name, index, value, token.at)
    return { _tag: "Matcher", name, values }
  }

  const unary = (): Rule => {
    const token = peek()
    if (token.kind === "!") {
      next++
      return { _tag: "Not", rule: unary() }
    }
    if (token.kind === "(") {
      next++
      const rule = or()
      expect(")", `) closing the ( at column ${token.at + 1}`)
      return rule
    }
    return matcher()
  }

  const and = (): Rule => {
    let rule = unary()
    while (peek().kind === "&&") {
      next++
      rule = { _tag: "And", left: rule, right: unary() }
    }
    return rule
  }

  const or = (): Rule => {
    let rule = and()
    while (peek().kind === "||") {
      next++
      rule = { _tag: "Or", left: rule, right: and() }
    }
    return rule
  }

  const rule = or()
  const rest = peek()
  if (rest.kind !== "end") throw new Stop(rest.at, `expected && or || before ${describeToken(rest)}`)
  return rule
}

/** An HTTP token (RFC 9110 §5.6.2): what header names and methods are made of. */
export const HTTP_TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/

/** Values a matcher could never match are mistakes worth stopping at. */
const checkValue = (name: MatcherName, index: number, value: string, at: number) => {
  if ((name === "Path" || name === "PathPrefix") && !value.startsWith("/")) {
    throw new Stop(at, `${name} values start with /, got \`${value}\``)
  }
  if (name === "Host" && (value === "" || /[\s/]/.test(value))) {
    throw new Stop(at, `Host takes a host name, got \`${value}\``)
  }
  if ((name === "Method" || (name === "Header" && index === 0)) && !HTTP_TOKEN.test(value)) {
    throw new Stop(at, `${name} takes ${name === "Method" ? "a method" : "a header name"}, got \`${value}\``)
  }
}

export const parseRule = (text: string): Either.Either<Rule, RuleSyntaxError> => {
  try {
    return Either.right(parseTokens(tokenize(text)))
  } catch (error) {
    if (!(error instanceof Stop)) throw error
    return Either.left(new RuleSyntaxError({ column: error.at + 1, message: error.message }))
  }
}
