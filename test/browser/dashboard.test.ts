/**
 * The live page `/_lb/dashboard`: served by the balancer as one self-contained document, and, in
 * Debian's headless Chromium during a load, showing every replica with numbers that move, asking
 * nothing of any other origin; a screenshot is kept in reports/browser/dashboard.png.
 */

import { execFile } from "node:child_process"
import { mkdirSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { setTimeout as sleep } from "node:timers/promises"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"
import { type Browser, chromium, type Page } from "playwright-core"
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest"
import { dashboardPage } from "../../layers/admin/dashboard.ts"
import { makeSelfSigned } from "../../src/process/certificates.ts"
import { NETWORK, SERVICE, startAgent } from "../support/agent.ts"
import { startBalancer } from "../support/balancer.ts"
import { useCluster } from "../support/cluster.ts"
import { ensureDebianPackage } from "../support/debian.ts"
import { json, request } from "../support/http.ts"
import { startReplicas } from "../support/replicas.ts"
import { routesFile } from "../support/routes-file.ts"
import { replicasView } from "../support/views.ts"
import { waitFor } from "../support/wait.ts"

/** A replica's own load report, as the fake replicas send it back on `/load-report?value=`. */
const LOAD_REPORT = "TEXT cpu_utilization=0.42, named_metrics.rif=3"

const run = promisify(execFile)
const screenshot = fileURLToPath(new URL("../../reports/browser/dashboard.png", import.meta.url))
const INSTALL_MS = 300_000

describe("/_lb/dashboard over HTTP", () => {
  const cluster = useCluster()

  it("answers GET and HEAD with the page, and 405 to POST", async () => {
    const page = await request(`${cluster.lb.url}/_lb/dashboard`)
    expect(page.status).toBe(200)
    expect(page.headers["content-type"]).toBe("text/html; charset=utf-8")
    expect(page.headers["x-replica"]).toBeUndefined()
    expect(page.headers["content-security-policy"]).toContain("connect-src 'self'")
    expect(page.body.toString("utf8")).toMatch(/^<!doctype html>/)
    // Small: it is sent on every reload.
    expect(page.body.length).toBeLessThan(16 * 1024)

    const head = await request(`${cluster.lb.url}/_lb/dashboard`, { method: "HEAD" })
    expect(head.status).toBe(200)
    expect(head.headers["content-length"]).toBe(String(page.body.length))
    expect(head.body.length).toBe(0)

    const post = await request(`${cluster.lb.url}/_lb/dashboard`, { method: "POST", body: Buffer.from("x") })
    expect(post.status).toBe(405)
    expect(post.headers.allow).toContain("GET")
    expect(json(post)).toMatchObject({ error: "method_not_allowed" })
  })

  it("writes the metrics path into its script as a literal that cannot end the script", () => {
    const html = dashboardPage("/x</script><script>alert(1)//").body.toString("utf8")
    expect(html.match(/<\/script>/g)).toHaveLength(1)
    expect(html).toContain('"/x\\u003c/script\\u003e\\u003cscript\\u003ealert(1)//"')
  })
})

/** Requests through the balancer from a few workers until stopped (or `limitMs` passed). */
const startLoad = (lb: string, workers: number, limitMs: number) => {
  const deadline = Date.now() + limitMs
  let running = true
  let sent = 0
  const failures: Array<string> = []
  const worker = async (index: number) => {
    while (running && Date.now() < deadline) {
      // One worker holds its requests a while, so leases show up too.
      const path = index === 0 ? "/slow?ms=300" : "/whoami"
      const reply = await request(`${lb}${path}`).catch((error: unknown) => ({ status: String(error) }))
      sent++
      if (reply.status !== 200) failures.push(`${path}: ${reply.status}`)
      await sleep(5)
    }
  }
  const done = Promise.all(Array.from({ length: workers }, (_, index) => worker(index)))
  return {
    sent: () => sent,
    failures,
    stop: async () => {
      running = false
      await done
    },
  }
}

/** The numbers an operator watches: total requests and each replica's picks per second. */
const readNumbers = async (page: Page) => ({
  total: await page.textContent("#total-requests"),
  picks: await pickRates(page),
})

const pickRates = (page: Page) =>
  page.$$eval("#replicas tr .picks", (cells) => cells.map((cell) => cell.textContent ?? ""))

/** Each row's reported load, by replica id: in flight, CPU and the report's age, as the page shows them. */
const reportedCells = async (page: Page): Promise<Map<string, ReadonlyArray<string>>> => {
  const rows = await page.$$eval("#replicas tr", (trs) =>
    trs.map((tr) => ({
      id: tr.getAttribute("data-id") ?? "",
      cells: [".reported-rif", ".reported-cpu", ".report-age"].map(
        (cls) => tr.querySelector(cls)?.textContent ?? "",
      ),
    })),
  )
  return new Map(rows.map((row) => [row.id, row.cells]))
}

describe("/_lb/dashboard in Chromium", () => {
  let browser: Browser

  beforeAll(async () => {
    const executablePath = await ensureDebianPackage("chromium", "chromium", { timeoutMs: INSTALL_MS })
    browser = await chromium.launch({ executablePath, args: ["--no-sandbox"], timeout: 60_000 })
  }, INSTALL_MS + 90_000)

  afterAll(async () => {
    await browser?.close()
  })

  it("shows every replica, with metrics, and numbers that change under load", async () => {
    const set = await startReplicas(3, { samePort: true })
    onTestFinished(() => set.stopAll())
    const agent = await startAgent(set.replicas)
    onTestFinished(() => agent.stop())
    const [busy, warm] = set.replicas
    agent.setLoad(busy!, { cpuPercent: 72, memoryPercent: 48, networkMbps: 35 })
    agent.setLoad(warm!, { cpuPercent: 31, memoryPercent: 22, networkMbps: 8 })
    const lb = await startBalancer({
      LB_ALGORITHM: "hybrid",
      REPLICAS: "",
      WORKER_NODES: agent.node,
      TARGET_SERVICE: SERVICE,
      TARGET_PORT: String(set.replicas[0]!.port),
      LB_NETWORK: NETWORK,
      CACHE_TTL: "0.5",
      // Not the default: the page must read the path it was given.
      LB_METRICS_PATH: "/lb-stats.json",
    })
    onTestFinished(() => lb.close())
    await waitFor("the balancer to discover three replicas", async () => {
      const rows = await replicasView(lb.url)
      return rows.length === 3 ? rows : undefined
    })
    // Registered last, so it stops first, before the balancer and replicas go.
    const load = startLoad(lb.url, 4, 45_000)
    onTestFinished(() => load.stop())

    const page = await browser.newPage({ viewport: { width: 1280, height: 400 } })
    onTestFinished(() => page.close())
    const problems: Array<string> = []
    page.on("console", (message) => {
      if (message.type() === "error") problems.push(`console: ${message.text()}`)
    })
    page.on("pageerror", (error) => problems.push(`page error: ${error.message}`))
    page.on("request", (request) => {
      // The page's `data:` icon is no request to anyone.
      const url = request.url()
      if (!url.startsWith("data:") && new URL(url).origin !== lb.url) problems.push(`request: ${url}`)
    })

    await page.goto(`${lb.url}/_lb/dashboard`)
    await page.waitForSelector("#status[data-state=live]", { timeout: 15_000 })
    // Every replica has a row, and a picks rate once two polls have seen it.
    await waitFor("a row with a picks rate for every replica", async () => {
      const rates = await pickRates(page)
      return rates.length === set.replicas.length && rates.every((rate) => /\d/.test(rate))
        ? rates
        : undefined
    })
    const rows = await page.$$eval("#replicas tr", (trs) =>
      trs.map((tr) => ({
        id: tr.getAttribute("data-id"),
        name: tr.querySelector(".replica div")?.textContent,
      })),
    )
    expect(rows.map((row) => row.id).sort()).toEqual(set.replicas.map(agent.containerId).sort())
    for (const row of rows) expect(row.name).toMatch(/^web-stress\.\d\.replica-\d$/)
    const busyRow = await page.$eval(`#replicas tr[data-id="${agent.containerId(busy!)}"]`, (tr) => ({
      cpu: tr.querySelector(".cpu")?.textContent,
      fresh: tr.querySelector(".age .sub")?.textContent,
      score: tr.querySelector(".score")?.textContent,
    }))
    expect(busyRow).toMatchObject({ cpu: "72.0 %", fresh: "fresh" })
    expect(Number(busyRow.score)).toBeGreaterThan(0)
    expect(await page.textContent("#algorithm")).toBe("hybrid")

    // No replica has reported its own load yet: a dash in each of those cells.
    for (const cells of (await reportedCells(page)).values()) expect(cells).toEqual(["–", "–", "–"])
    // Reports, through the balancer: whichever replicas answered them show them, the others still a dash.
    for (let i = 0; i < 6; i++) {
      expect((await request(`${lb.url}/load-report?value=${encodeURIComponent(LOAD_REPORT)}`)).status).toBe(
        200,
      )
    }
    const reported = new Set(
      (await replicasView(lb.url)).filter((row) => row.load_report !== null).map((row) => row.id),
    )
    expect(reported.size).toBeGreaterThan(0)
    await waitFor("the page to show each replica's own load report, or a dash", async () => {
      const shown = await reportedCells(page)
      return [...shown].every(([id, [rif, cpu, age]]) =>
        reported.has(id)
          ? rif === "3" && cpu === "42.0 %" && /^\d[\d.,]* (ms|s)$/.test(age!)
          : rif === "–" && cpu === "–" && age === "–",
      )
        ? shown
        : undefined
    })

    // The page keeps polling: under the load its figures change and a sparkline grows a second point,
    // however long a busy machine takes to show it.
    const first = await readNumbers(page)
    const sparklines = () =>
      page.$$eval("#replicas .spark path.line", (paths) => paths.map((path) => path.getAttribute("d") ?? ""))
    await waitFor(
      "the page to show new totals, new picks rates and a sparkline of two points or more",
      async () => {
        const second = await readNumbers(page)
        return second.total !== first.total &&
          JSON.stringify(second.picks) !== JSON.stringify(first.picks) &&
          (await sparklines()).some((d) => d.includes("L"))
          ? true
          : undefined
      },
      { timeoutMs: 30_000, intervalMs: 100 },
    )

    mkdirSync(dirname(screenshot), { recursive: true })
    await page.screenshot({ path: screenshot, fullPage: true })
    expect(problems).toEqual([])

    // A balancer that stops answering is said so plainly, with the last numbers kept but dimmed.
    await page.route(
      (url) => url.pathname.startsWith("/_lb/") || url.pathname === "/lb-stats.json",
      (route) => route.abort(),
    )
    await page.waitForSelector("#status[data-state=down]", { timeout: 10_000 })
    expect(await page.textContent("#status")).toContain("balancer not answering")

    await load.stop()
    expect(load.sent()).toBeGreaterThan(0)
    expect(load.failures).toEqual([])
  })

  it("with two routes, offers a route selector that narrows the rows and the figures to one route", async () => {
    const set = await startReplicas(3)
    onTestFinished(() => set.stopAll())
    const file = routesFile(`
routes:
  - name: api
    rule: PathPrefix(\`/api\`)
    algorithm: round-robin
    replicas: [${set.replicas[0]!.origin}]
  - name: web
    rule: PathPrefix(\`/\`)
    replicas: [${set.replicas[1]!.origin}, ${set.replicas[2]!.origin}]
`)
    onTestFinished(() => file.remove())
    const lb = await startBalancer({ LB_ROUTES_FILE: file.path })
    onTestFinished(() => lb.close())
    for (let i = 0; i < 5; i++) await request(`${lb.url}/api/items`)
    for (let i = 0; i < 7; i++) await request(`${lb.url}/home`)

    const page = await browser.newPage({ viewport: { width: 1280, height: 400 } })
    onTestFinished(() => page.close())
    await page.goto(`${lb.url}/_lb/dashboard`)
    await page.waitForSelector("#route:not([hidden])", { timeout: 10_000 })
    expect(await page.$$eval("#route option", (options) => options.map((o) => o.textContent))).toEqual([
      "all routes (2)",
      "route api",
      "route web",
    ])
    const rowRoutes = () =>
      page.$$eval("#replicas tr", (trs) => trs.map((tr) => tr.getAttribute("data-route")))
    await waitFor("a row per replica of both routes", async () =>
      (await rowRoutes()).length === 3 ? true : undefined,
    )
    expect(await page.textContent("#total-requests")).toBe("12")

    await page.selectOption("#route", "api")
    expect(await rowRoutes()).toEqual(["api"])
    expect(await page.textContent("#algorithm")).toBe("round-robin")
    expect(await page.textContent("#total-requests")).toBe("5")
    expect(await page.textContent("#healthy")).toBe("1 / 1")
    await page.selectOption("#route", "web")
    expect(await rowRoutes()).toEqual(["web", "web"])
    expect(await page.textContent("#total-requests")).toBe("7")
  })

  it("loads over HTTPS with HTTP/2, and polls its views on that connection", async () => {
    const set = await startReplicas(2)
    onTestFinished(() => set.stopAll())
    const dir = mkdtempSync(join(tmpdir(), "swarmguard-dashboard-tls-"))
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }))
    const { certFile, keyFile } = await makeSelfSigned(dir)
    const lb = await startBalancer({
      REPLICAS: set.replicas.map(({ origin }) => origin).join(","),
      TLS_CERT_FILE: certFile,
      TLS_KEY_FILE: keyFile,
    })
    onTestFinished(() => lb.close())
    const origin = `https://127.0.0.1:${lb.port}`
    // Four proxied requests on one HTTP/2 connection, from the real curl (not synchronously: the
    // balancer runs in this process).
    await run("curl", ["-sk", "--http2", "-o", "/dev/null", ...Array(4).fill(`${origin}/x`)])

    // The certificate is self-signed: the browser is told to accept it, as a user would once.
    const context = await browser.newContext({
      ignoreHTTPSErrors: true,
      viewport: { width: 1280, height: 400 },
    })
    onTestFinished(() => context.close())
    const page = await context.newPage()
    const answered: Array<string> = []
    page.on("response", (response) => {
      if (new URL(response.url()).origin === origin) answered.push(response.url())
    })
    const response = await page.goto(`${origin}/_lb/dashboard`)
    expect(response?.status()).toBe(200)
    expect((await response?.securityDetails())?.protocol).toMatch(/^TLS 1\.[23]$/)
    await page.waitForSelector("#status[data-state=live]", { timeout: 15_000 })
    expect(await page.textContent("#total-requests")).toBe("4")
    // The page and its polls went over HTTP/2, as ALPN chose.
    // A string: the page's own globals, which this file's types (Node's) do not describe.
    const nextHop = await page.evaluate(`performance.getEntriesByType("navigation")[0].nextHopProtocol`)
    expect(nextHop).toBe("h2")
    expect(answered.length).toBeGreaterThan(1)
  })
})
