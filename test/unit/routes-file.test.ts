/** The routes file: every route decoded, or one line naming the route, the key and what is wrong. */
import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import type { RouteSpec } from "../../src/routes/route-spec.ts"
import { parseRoutesFile } from "../../src/routes/routes-file.ts"
import { requestFacts } from "../../src/routes/rule-match.ts"

const routesOf = (text: string): ReadonlyArray<RouteSpec> => {
  const result = parseRoutesFile("routes.yaml", text)
  if (Either.isLeft(result)) throw new Error(result.left.message)
  return result.right
}

const problemOf = (text: string): string => {
  const result = parseRoutesFile("routes.yaml", text)
  if (Either.isRight(result)) throw new Error("expected the file to be refused")
  return result.left.message
}

const EXAMPLE = `
routes:
  - name: api
    rule: Host(\`api.local\`) && PathPrefix(\`/v1\`)
    algorithm: adaptive
    affinity: cookie
    replicas: [http://127.0.0.2:9001, http://127.0.0.3:9001]
  - name: web
    rule: PathPrefix(\`/\`)
    replicas:
      - { url: http://127.0.0.4:9001, weight: 3 }
      - { url: http://127.0.0.5:9001, weight: 1 }
  - name: admin
    rule: PathPrefix(\`/admin\`)
    strip-prefix: /admin
    service: admin
    weight: 2
    health-path: /ready
`

describe("routes file", () => {
  it("decodes the documented example", () => {
    const [api, web, admin] = routesOf(EXAMPLE)
    expect(api).toMatchObject({
      name: "api",
      priority: "Host(`api.local`) && PathPrefix(`/v1`)".length,
      algorithm: "adaptive",
      affinity: { _tag: "Cookie" },
      upstream: {
        _tag: "Replicas",
        replicas: [
          { origin: "http://127.0.0.2:9001", weight: 1 },
          { origin: "http://127.0.0.3:9001", weight: 1 },
        ],
      },
    })
    expect(api!.matches(requestFacts("GET", "/v1/items", { host: "api.local:8081" }))).toBe(true)
    expect(api!.matches(requestFacts("GET", "/v1/items", { host: "web.local" }))).toBe(false)
    expect(web!.upstream).toEqual({
      _tag: "Replicas",
      replicas: [
        { origin: "http://127.0.0.4:9001", weight: 3 },
        { origin: "http://127.0.0.5:9001", weight: 1 },
      ],
    })
    expect(admin).toMatchObject({
      stripPrefix: "/admin",
      upstream: { _tag: "Service", service: "admin" },
      weight: 2,
      healthPath: "/ready",
      algorithm: undefined,
    })
  })

  it("reads JSON too, and hash affinities", () => {
    const [route] = routesOf(
      JSON.stringify({
        routes: [{ name: "a", rule: "Path(`/`)", affinity: "hash:X-User", service: "a", priority: 7 }],
      }),
    )
    expect(route).toMatchObject({ priority: 7, affinity: { _tag: "Hash", key: "header", header: "x-user" } })
  })

  it("names the route, the key and what is wrong, in one line", () => {
    const cases: ReadonlyArray<readonly [string, string]> = [
      [
        "routes:\n  - { name: api, rule: 'Path(`/`)', algorithm: fastest, service: api }",
        "route api, algorithm: expected one of lease, metrics, hybrid, round-robin, adaptive",
      ],
      [
        "routes:\n  - { name: api, rule: 'Hots(`a`)', service: api }",
        "route api, rule: unknown matcher Hots (known: Host, Path, PathPrefix, Method, Header) (column 1)",
      ],
      [
        "routes:\n  - { name: api, rule: 'Path(`/`)' }",
        "route api, replicas: give either replicas or service, not both or neither",
      ],
      [
        "routes:\n  - { name: api, rule: 'Path(`/`)', replicas: [ftp://x] }",
        "route api, replicas[0]: expected an http://host:port URL",
      ],
      [
        "routes:\n  - { name: api, rule: 'Path(`/`)', replicas: [{ url: 'http://a:1', weight: -1 }] }",
        "route api, replicas[0].weight: expected a weight from 0 to 1000",
      ],
      [
        "routes:\n  - { name: api, rule: 'Path(`/`)', service: a, algoritm: lease }",
        'route api, algoritm: is unexpected, expected: "name" | "rule" | "priority" | "strip-prefix" | "replicas" | "service" | "port" | "weight" | "algorithm" | "affinity" | "health-path"',
      ],
      ["routes:\n  - { rule: 'Path(`/`)', service: a }", "route #1, name: is missing"],
      [
        "routes:\n  - { name: a, rule: 'Path(`/`)', service: a }\n  - { name: a, rule: 'Path(`/b`)', service: b }",
        "route a, name: given to two routes",
      ],
      [
        "routes:\n  - { name: a, rule: 'Path(`/`)', service: a, strip-prefix: api }",
        "route a, strip-prefix: expected a path starting with /",
      ],
      [
        "routes:\n  - { name: a, rule: 'Path(`/`)', service: a, affinity: sticky }",
        "route a, affinity: expected cookie, hash:ip or hash:<header name>",
      ],
      ["routes: {}", "routes: expected a list of routes"],
      ["routes: [", "not YAML or JSON: "],
    ]
    for (const [text, reason] of cases) {
      const message = problemOf(text)
      expect(message.startsWith(`routes file routes.yaml: ${reason}`), message).toBe(true)
      expect(message).not.toContain("\n")
    }
  })
})
