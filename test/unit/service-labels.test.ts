/** Routes from Swarm service labels: what an enabled service becomes, and one clear line for what is wrong. */
import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import { describeLabelProblem, routeOfLabels } from "../../src/routes/service-labels.ts"

const labels = (extra: Record<string, string>) => ({ "swarmguard.enable": "true", ...extra })

const problemOf = (service: string, given: Record<string, string>) => {
  const route = routeOfLabels(service, given)
  if (route === undefined || Either.isRight(route)) throw new Error("expected a problem")
  return describeLabelProblem(route.left)
}

describe("service labels", () => {
  it("routes an enabled service to its own tasks with its labels as settings", () => {
    const route = routeOfLabels(
      "shop_web",
      labels({
        "swarmguard.rule": "Host(`shop.local`) && PathPrefix(`/cart`)",
        "swarmguard.port": "8080",
        "swarmguard.priority": "50",
        "swarmguard.weight": "2",
        "swarmguard.algorithm": "adaptive",
        "swarmguard.affinity": "cookie",
        "swarmguard.strip-prefix": "/cart",
        "swarmguard.health-path": "/ready",
        "com.docker.stack.namespace": "shop",
      }),
    )
    expect(route !== undefined && Either.isRight(route)).toBe(true)
    const spec = (route as Either.Right<never, import("../../src/routes/route-spec.ts").RouteSpec>).right
    expect(spec).toMatchObject({
      name: "shop_web",
      priority: 50,
      weight: 2,
      algorithm: "adaptive",
      affinity: { _tag: "Cookie" },
      stripPrefix: "/cart",
      healthPath: "/ready",
      upstream: { _tag: "Service", service: "shop_web", port: 8080 },
    })
    expect(spec.hosts).toEqual(new Set(["shop.local"]))
  })

  it("leaves a service alone unless swarmguard.enable is true", () => {
    expect(routeOfLabels("a", { "swarmguard.rule": "Host(`a`)" })).toBeUndefined()
    expect(
      routeOfLabels("a", { "swarmguard.enable": "false", "swarmguard.rule": "Host(`a`)" }),
    ).toBeUndefined()
    expect(routeOfLabels("a", { "swarmguard.enable": "TRUE", "swarmguard.rule": "Host(`a`)" })).toBeDefined()
  })

  it.each([
    [{}, "service labels: route api, swarmguard.rule: is missing: which requests go to this service?"],
    [{ "swarmguard.rule": "Host(`a`" }, "service labels: route api, swarmguard.rule: "],
    [
      { "swarmguard.rule": "Host(`a`)", "swarmguard.port": "http" },
      'route api, swarmguard.port: expected a number, got "http"',
    ],
    [
      { "swarmguard.rule": "Host(`a`)", "swarmguard.port": "70000" },
      "route api, swarmguard.port: expected a TCP port",
    ],
    [
      { "swarmguard.rule": "Host(`a`)", "swarmguard.algoritm": "lease" },
      "route api, swarmguard.algoritm: is not a label",
    ],
    [
      { "swarmguard.rule": "Host(`a`)", "swarmguard.affinity": "sticky" },
      "route api, swarmguard.affinity: expected cookie",
    ],
    [
      { "swarmguard.rule": "Host(`a`)", "swarmguard.replicas": "http://x:1" },
      "route api, swarmguard.replicas: is not a label",
    ],
  ])("a bad label gets one line naming the service and the label: %j", (given, expected) => {
    expect(problemOf("api", labels(given))).toContain(expected)
  })
})
