// Start-up failures (bad configuration, a port in use) stop the real program: one stderr line saying what and why, exit 1.
import { type AddressInfo, createServer } from "node:net"
import { describe, expect, it, onTestFinished } from "vitest"
import { runBalancerToExit } from "../../src/process/balancer.ts"

describe("bad configuration", () => {
  it.concurrent.each([
    ["LB_ALGORITHM", "fastest", /one of lease, metrics, hybrid, round-robin/],
    ["LB_PORT", "-1", /TCP port.*0 to 65535/],
    ["CPU_WEIGHT", "abc", /number of 0 or more/],
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
})
