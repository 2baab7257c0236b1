/** Route rules: Traefik's syntax parsed into a tree, errors with their column, and matching requests. */
import { describe, expect, it } from "@effect/vitest"
import { Either, FastCheck as fc } from "effect"
import { compileRule, normalizeHost, requestFacts } from "../../src/routes/rule-match.ts"
import { type MatcherName, parseRule, type Rule } from "../../src/routes/rule-syntax.ts"

const parsed = (text: string): Rule => {
  const result = parseRule(text)
  if (Either.isLeft(result)) throw new Error(`${text}: ${result.left.message}`)
  return result.right
}

const errorOf = (text: string) => {
  const result = parseRule(text)
  expect(Either.isLeft(result)).toBe(true)
  return Either.isLeft(result) ? { column: result.left.column, message: result.left.message } : undefined
}

const matches = (text: string, method: string, url: string, headers: Record<string, string | string[]>) =>
  compileRule(parsed(text))(requestFacts(method, url, headers))

/** The rule as text again, fully parenthesised, values in backticks. */
const print = (rule: Rule): string => {
  switch (rule._tag) {
    case "Matcher":
      return `${rule.name}(${rule.values.map((value) => `\`${value}\``).join(", ")})`
    case "Not":
      return `!${print(rule.rule)}`
    case "And":
      return `(${print(rule.left)} && ${print(rule.right)})`
    case "Or":
      return `(${print(rule.left)} || ${print(rule.right)})`
  }
}

describe("route rules", () => {
  it("parses matchers, with ! binding tightest, then &&, then ||", () => {
    expect(print(parsed("Host(`a.example`) && PathPrefix(`/api`) || !Method(`GET`, `HEAD`)"))).toBe(
      "((Host(`a.example`) && PathPrefix(`/api`)) || !Method(`GET`, `HEAD`))",
    )
    expect(print(parsed('Host("a") && (Path("/x") || Header(`X-Env`, `canary`))'))).toBe(
      "(Host(`a`) && (Path(`/x`) || Header(`X-Env`, `canary`)))",
    )
    expect(print(parsed("!!Host(`a`)"))).toBe("!!Host(`a`)")
  })

  it("names the column and what is wrong", () => {
    expect(errorOf("Host(`a`) && Hots(`b`)")).toEqual({
      column: 14,
      message: "unknown matcher Hots (known: Host, Path, PathPrefix, Method, Header)",
    })
    expect(errorOf("Host(`a`")).toEqual({
      column: 9,
      message: "expected , or ) in Host(…), found the end of the rule",
    })
    expect(errorOf("Host(`a) ")?.message).toBe("the value opened here with ` is never closed")
    expect(errorOf("Host(`a`) & Path(`/`)")).toEqual({ column: 11, message: "expected &&" })
    expect(errorOf("Host(`a`) Path(`/`)")).toEqual({ column: 11, message: "expected && or || before Path" })
    expect(errorOf("(Host(`a`)")).toEqual({
      column: 11,
      message: "expected ) closing the ( at column 1, found the end of the rule",
    })
    expect(errorOf("PathPrefix(`api`)")?.message).toBe("PathPrefix values start with /, got `api`")
    expect(errorOf("Header(`X-Env`)")?.message).toBe("Header takes two values (name, value), got 1")
    expect(errorOf("Method(`GE T`)")?.message).toBe("Method takes a method, got `GE T`")
    expect(errorOf("")?.message).toBe("expected a matcher, ! or (, found the end of the rule")
    expect(errorOf("Host()")?.message).toBe("expected a quoted value, found )")
  })

  it("matches host without port or case, path as sent without query, method, header", () => {
    expect(matches("Host(`api.example`)", "GET", "/", { host: "API.example:8080" })).toBe(true)
    expect(matches("Host(`api.example`)", "GET", "/", { host: "other.example" })).toBe(false)
    expect(matches("Host(`api.example`)", "GET", "/", {})).toBe(false)
    expect(matches("Path(`/v1/items`)", "GET", "/v1/items?page=2", {})).toBe(true)
    expect(matches("Path(`/v1/items`)", "GET", "/v1/items/3", {})).toBe(false)
    expect(matches("PathPrefix(`/v1`)", "GET", "/v1/items", {})).toBe(true)
    expect(matches("PathPrefix(`/v1`)", "GET", "/v2/items", {})).toBe(false)
    expect(matches("Method(`post`)", "POST", "/", {})).toBe(true)
    expect(matches("Header(`X-Env`, `canary`)", "GET", "/", { "x-env": "canary" })).toBe(true)
    expect(matches("Header(`X-Env`, `canary`)", "GET", "/", { "x-env": ["stable", "canary"] })).toBe(true)
    expect(matches("Header(`X-Env`, `canary`)", "GET", "/", { "x-env": "stable" })).toBe(false)
    expect(matches("Host(`a`) && !PathPrefix(`/admin`)", "GET", "/admin/x", { host: "a" })).toBe(false)
    expect(matches("Host(`a`, `b`) || Path(`/health`)", "GET", "/health", { host: "c" })).toBe(true)
  })

  it("reads the host name alone out of every form of Host header", () => {
    expect(normalizeHost("Example.COM")).toBe("example.com")
    expect(normalizeHost("example.com.:443")).toBe("example.com")
    expect(normalizeHost("[::1]:8081")).toBe("[::1]")
    expect(normalizeHost("127.0.0.2:9001")).toBe("127.0.0.2")
    expect(normalizeHost(undefined)).toBe("")
  })

  const value = fc.stringMatching(/^[a-z0-9.-]{1,12}$/)
  const matcher: fc.Arbitrary<Rule> = fc.oneof(
    fc
      .tuple(fc.constantFrom<MatcherName>("Host", "Method"), fc.array(value, { minLength: 1, maxLength: 3 }))
      .map(([name, values]) => ({ _tag: "Matcher", name, values }) as const),
    fc
      .tuple(
        fc.constantFrom<MatcherName>("Path", "PathPrefix"),
        fc.array(value, { minLength: 1, maxLength: 3 }),
      )
      .map(([name, values]) => ({ _tag: "Matcher", name, values: values.map((v) => `/${v}`) }) as const),
    fc
      .tuple(
        value,
        fc.string({ maxLength: 8 }).filter((v) => !v.includes("`")),
      )
      .map(
        ([name, headerValue]) => ({ _tag: "Matcher", name: "Header", values: [name, headerValue] }) as const,
      ),
  )
  const { rule } = fc.letrec<{ rule: Rule }>((tie) => ({
    rule: fc.oneof(
      { depthSize: "small", withCrossShrink: true },
      matcher,
      tie("rule").map((inner) => ({ _tag: "Not", rule: inner }) as const),
      fc.tuple(tie("rule"), tie("rule")).map(([left, right]) => ({ _tag: "And", left, right }) as const),
      fc.tuple(tie("rule"), tie("rule")).map(([left, right]) => ({ _tag: "Or", left, right }) as const),
    ),
  }))

  it.prop("reads back every rule it can print", [rule], ([tree]) => {
    expect(parsed(print(tree))).toEqual(tree)
  })
})
