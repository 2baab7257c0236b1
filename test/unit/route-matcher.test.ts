/**
 * Route matching: the highest priority first, ties in the order given, no route when none matches, and
 * the host index choosing exactly what trying every route in order would.
 */
import { describe, expect, it } from "@effect/vitest"
import { Either, FastCheck as fc } from "effect"
import { makeRouteMatcher } from "../../src/routes/route-matcher.ts"
import { compileRule, requestFacts, requiredHosts } from "../../src/routes/rule-match.ts"
import { parseRule } from "../../src/routes/rule-syntax.ts"

const route = (name: string, rule: string, priority = rule.length) => {
  const parsed = parseRule(rule)
  if (Either.isLeft(parsed)) throw new Error(parsed.left.message)
  return { name, priority, matches: compileRule(parsed.right), hosts: requiredHosts(parsed.right) }
}

const nameFor = (routes: ReadonlyArray<ReturnType<typeof route>>, method: string, url: string, host = "a") =>
  makeRouteMatcher(routes).match(requestFacts(method, url, { host }))?.name

describe("route matcher", () => {
  it("tries the longer rule first by default, so the more specific one wins", () => {
    const routes = [
      route("all", "PathPrefix(`/`)"),
      route("api", "PathPrefix(`/api`)"),
      route("api-on-a", "Host(`a`) && PathPrefix(`/api`)"),
    ]
    expect(nameFor(routes, "GET", "/api/x")).toBe("api-on-a")
    expect(nameFor(routes, "GET", "/api/x", "b")).toBe("api")
    expect(nameFor(routes, "GET", "/home")).toBe("all")
  })

  it("follows a given priority over the rule's length, and the order given between equals", () => {
    const routes = [
      route("first", "PathPrefix(`/`)", 10),
      route("second", "PathPrefix(`/`)", 10),
      route("specific", "Path(`/x`)", 1),
    ]
    expect(nameFor(routes, "GET", "/x")).toBe("first")
  })

  it("matches nothing when no rule does", () => {
    expect(nameFor([route("api", "PathPrefix(`/api`)")], "GET", "/home")).toBeUndefined()
    expect(nameFor([], "GET", "/")).toBeUndefined()
  })

  it.prop(
    "chooses a matching route of the highest priority, the first given among equals",
    [fc.array(fc.tuple(fc.integer({ min: 0, max: 3 }), fc.boolean()), { maxLength: 12 })],
    ([specs]) => {
      const routes = specs.map(([priority, matches], index) => ({
        index,
        priority,
        matches: () => matches,
        hosts: undefined,
      }))
      const chosen = makeRouteMatcher(routes).match(requestFacts("GET", "/", {}))
      const matching = routes.filter((candidate) => candidate.matches())
      const top = Math.max(...matching.map((candidate) => candidate.priority))
      expect(chosen).toBe(matching.find((candidate) => candidate.priority === top))
    },
  )

  const RULES = [
    "Host(`a`)",
    "Host(`A.`, `b`)",
    "Host(`a`) && PathPrefix(`/x`)",
    "Host(`a`) && Host(`b`)",
    "Host(`b`) || PathPrefix(`/x`)",
    "(Host(`a`) || Host(`c`)) && !Path(`/y`)",
    "!Host(`a`)",
    "PathPrefix(`/`)",
    "Path(`/y`)",
  ]

  it.prop(
    "with the host index, chooses what trying every route in order would",
    [
      fc.array(fc.tuple(fc.constantFrom(...RULES), fc.integer({ min: 0, max: 2 })), { maxLength: 10 }),
      fc.constantFrom("a", "A:8081", "b", "c", "d", ""),
      fc.constantFrom("/", "/x", "/x/1", "/y"),
    ],
    ([specs, host, path]) => {
      const routes = specs.map(([rule, priority], i) => route(`r${i}`, rule, priority))
      const facts = requestFacts("GET", path, host === "" ? {} : { host })
      const linear = [...routes].sort((a, b) => b.priority - a.priority).find((r) => r.matches(facts))
      expect(makeRouteMatcher(routes).match(facts)).toBe(linear)
    },
  )
})
