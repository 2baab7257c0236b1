/**
 * The comparison report as a reader sees it: written by writeReport, opened from disk in Debian's
 * headless Chromium (installed when missing), every chart drawn offline, and a screenshot kept in
 * reports/browser/report.png for a person to look at.
 *
 * With REPORT_DIR set (`npm run test:report` sets reports/latest), the first test opens that real
 * comparison's report instead of the fixture and keeps its screenshot beside it.
 */

import { mkdirSync } from "node:fs"
import { mkdtemp, readFile, readlink, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { basename, join } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import { type Browser, chromium } from "playwright-core"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { Report } from "../../deploy/compare/report/Report.ts"
import { writeReport } from "../../deploy/compare/report/write.ts"
import { ensureDebianPackage } from "../support/debian.ts"
import { makeReport } from "./fixtures.ts"

const givenReportDir = process.env.REPORT_DIR
const screenshot =
  givenReportDir === undefined
    ? fileURLToPath(new URL("../../reports/browser/report.png", import.meta.url))
    : join(givenReportDir, "report.png")
const INSTALL_MS = 300_000

describe("report.html in Chromium", () => {
  let browser: Browser
  let reportsDir: string

  beforeAll(async () => {
    reportsDir = await mkdtemp(join(tmpdir(), "sg-report-"))
    const executablePath = await ensureDebianPackage("chromium", "chromium", { timeoutMs: INSTALL_MS })
    browser = await chromium.launch({ executablePath, args: ["--no-sandbox"], timeout: 60_000 })
  }, INSTALL_MS + 90_000)

  afterAll(async () => {
    await browser?.close()
    if (reportsDir) await rm(reportsDir, { recursive: true, force: true })
  })

  it("draws every chart from the page alone, without errors or network", async () => {
    const folder = givenReportDir ?? (await writeReport(makeReport(), reportsDir))
    const report: Report = JSON.parse(await readFile(join(folder, "report.json"), "utf8"))

    // Wider than the page's 1280 px: the three per-algorithm charts then sit side by side.
    const page = await browser.newPage({ viewport: { width: 1320, height: 900 } })
    const problems: Array<string> = []
    page.on("console", (message) => {
      if (message.type() === "error") problems.push(`console: ${message.text()}`)
    })
    page.on("pageerror", (error) => problems.push(`page error: ${error.message}`))
    page.on("request", (request) => {
      if (!request.url().startsWith("file:")) problems.push(`request: ${request.url()}`)
    })

    await page.goto(pathToFileURL(join(folder, "report.html")).href)
    // The page marks each chart once drawn or failed: wait until none is left unmarked.
    await page.waitForSelector(".chart:not([data-rendered])", { state: "detached", timeout: 30_000 })

    const charts = await page.$$eval(".chart", (elements) =>
      elements.map((element) => ({
        id: element.id,
        rendered: element.getAttribute("data-rendered"),
        svgs: element.querySelectorAll("svg").length,
        marks: element.querySelectorAll("svg .role-mark path, svg .role-mark rect").length,
      })),
    )
    // Per scenario: p99, share, CPU, requests per second, p99 per second.
    expect(charts).toHaveLength(report.scenarios.length * 5)
    for (const chart of charts) {
      expect(chart.rendered, chart.id).toBe("true")
      expect(chart.svgs, chart.id).toBeGreaterThan(0)
      expect(chart.marks, chart.id).toBeGreaterThan(0)
    }

    // Every algorithm's row is in its scenario's table, and text from the report shows as written.
    for (const [index, scenario] of report.scenarios.entries()) {
      const rows = report.rows.filter((row) => row.scenario === scenario.name)
      const cells = await page.$$eval(`#scenario-${index + 1} tbody tr td:first-child`, (tds) =>
        tds.map((td) => td.textContent),
      )
      expect(cells).toEqual(rows.map((row) => row.algorithm))
      // cpu_cv is a percentage in report.json, and the page shows that number under its "%" header.
      const header = await page.$$eval(`#scenario-${index + 1} thead th`, (ths) =>
        ths.map((th) => th.textContent),
      )
      const column = header.indexOf("cpu cv %") + 1
      expect(column, JSON.stringify(header)).toBeGreaterThan(0)
      const cv = await page.$$eval(`#scenario-${index + 1} tbody tr td:nth-child(${column})`, (tds) =>
        tds.map((td) => td.textContent),
      )
      expect(cv).toEqual(rows.map((row) => row.cpu_cv.toFixed(1)))
      // The p99 chart draws each row's 95 % interval as an error bar (a rule mark per row).
      const errorBars = await page.$$eval(
        `#scenario-${index + 1}-p99 svg g.mark-rule.role-mark > *`,
        (elements) => elements.length,
      )
      expect(errorBars).toBe(rows.length)
    }
    const notes = await page.$$eval("#notes li", (items) => items.map((item) => item.textContent))
    expect(notes).toEqual([...report.notes])
    const verdicts = await page.$$eval("#goals tbody td:nth-child(5)", (tds) =>
      tds.map((td) => td.textContent),
    )
    expect(verdicts).toEqual(report.goals.map((goal) => goal.verdict))

    mkdirSync(join(screenshot, ".."), { recursive: true })
    await page.screenshot({ path: screenshot, fullPage: true })
    await page.close()
    expect(problems).toEqual([])
  })

  it("keeps JSON and Markdown beside the page, and latest on the newest report", async () => {
    const report = makeReport()
    const dir = join(reportsDir, "twice")
    const first = await writeReport(report, dir)
    const second = await writeReport(report, dir)
    expect(basename(first)).toBe("2026-11-25T18-30-00Z")
    // Same second: the later report gets a folder of its own rather than overwriting the first.
    expect(basename(second)).toBe(`${basename(first)}-2`)
    expect(await readlink(join(dir, "latest"))).toBe(basename(second))
    expect(JSON.parse(await readFile(join(dir, "latest", "report.json"), "utf8"))).toEqual(
      JSON.parse(JSON.stringify(report)),
    )
    const markdown = await readFile(join(dir, "latest", "report.md"), "utf8")
    expect(markdown).toContain("| nginx least_conn *(reference)* |")
    expect(markdown).toContain("&lt;load average 1.21 at the start&gt;")
  })
})
