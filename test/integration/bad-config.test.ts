// Start-up failures (bad configuration, a port in use) stop the real program: one stderr line saying what and why, exit 1.
import { type AddressInfo, createServer } from "node:net"
import { describe, expect, it, onTestFinished } from "vitest"
import { runBalancerToExit } from "../../src/process/balancer.ts"
import { routesFile } from "../support/routes-file.ts"

describe("bad configuration", () => {
  it.concurrent.each([
    ["LB_ALGORITHM", "fastest", /one of lease, metrics, hybrid, round-robin/],
    ["LB_PORT", "-1", /TCP port.*0 to 65535/],
    ["CPU_WEIGHT", "abc", /number of 0 or more/],
    ["RATE_LIMIT", "100 per second", /a rate such as 100\/s/],
    ["RATE_LIMIT_KEY", "cookie", /ip, route or header:<name>/],
    ["RATE_LIMIT_REDIS_URL", "http://redis:6379", /redis:\/\/\[user:password@\]host/],
    ["TRUSTED_PROXIES", "10.0.0.0/33", /IP addresses or CIDR blocks/],
  ])("%s=%s stops the program with exit code 1", async (variable, value, expected) => {
    const exit = await runBalancerToExit({ REPLICAS: "http://127.0.0.2:9", [variable]: value })
    expect(exit.code).toBe(1)
    const lines = exit.stderr.split("\n").filter((line) => line !== "")
    expect(lines, exit.stderr).toHaveLength(1)
    const line = lines[0]!
    expect(line).toContain(variable)
    expect(line).toContain(JSON.stringify(value))
    expect(line).toMatch(expected)
    // Nothing started: no listening line, no stack trace.
    expect(exit.stdout).not.toContain("load balancer listening")
  })

  it("a port already in use stops the program the same way", async () => {
    const taken = createServer()
    await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve))
    onTestFinished(() => {
      taken.close()
    })
    const { port } = taken.address() as AddressInfo

    const exit = await runBalancerToExit({ REPLICAS: "http://127.0.0.2:9", LB_PORT: String(port) })
    expect(exit.code).toBe(1)
    const lines = exit.stderr.split("\n").filter((line) => line !== "")
    expect(lines, exit.stderr).toHaveLength(1)
    expect(lines[0]).toContain(`127.0.0.1:${port}`)
    expect(lines[0]).toMatch(/EADDRINUSE|in use/)
  })

  it.concurrent.each([
    [
      "a route without its replicas",
      "routes:\n  - name: api\n    rule: Host(`api.local`)\n",
      /routes file .*routes\.yml: route api, replicas: give either replicas or service/,
    ],
    [
      "a misspelt key",
      "routes:\n  - name: api\n    rule: Host(`api.local`)\n    algoritm: adaptive\n    service: api\n",
      /route api, algoritm: is unexpected, expected: "name" \| "rule"/,
    ],
    [
      "a malformed rate",
      "routes:\n  - name: api\n    rule: Host(`api.local`)\n    service: api\n    rate-limit: fast\n",
      /route api, rate-limit: expected a rate such as 100\/s/,
    ],
    [
      "a rule that does not parse",
      "routes:\n  - name: api\n    rule: Host(`api.local`) &&\n    service: api\n",
      /route api, rule: .*column \d+/,
    ],
  ])("a routes file with %s stops the program with one line naming the route and key", async (_, text, expected) => {
    const file = routesFile(text)
    const exit = await runBalancerToExit({ LB_ROUTES_FILE: file.path }).finally(file.remove)
    expect(exit.code).toBe(1)
    const lines = exit.stderr.split("\n").filter((line) => line !== "")
    expect(lines, exit.stderr).toHaveLength(1)
    expect(lines[0]).toMatch(expected)
    expect(exit.stdout).not.toContain("load balancer listening")
  })

  it("a routes file that cannot be read, or one given with REPLICAS, stops the program too", async () => {
    const missing = await runBalancerToExit({ LB_ROUTES_FILE: "/nonexistent/routes.yml" })
    expect(missing.code).toBe(1)
    expect(missing.stderr.trim()).toBe(
      "swarmguard-lb: routes file /nonexistent/routes.yml: cannot be read: ENOENT",
    )
    const file = routesFile("routes: []\n")
    const both = await runBalancerToExit({
      LB_ROUTES_FILE: file.path,
      REPLICAS: "http://127.0.0.2:9",
    }).finally(file.remove)
    expect(both.code).toBe(1)
    expect(both.stderr).toMatch(/REPLICAS=.*no value when LB_ROUTES_FILE or ROUTES_FROM_LABELS is set/)
  })
})
