/** Writes a comparison report's JSON, HTML and Markdown into a folder of its own, and points `latest` at it. */
import { randomBytes } from "node:crypto"
import { mkdir, rename, rm, symlink, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { renderHtml } from "./html.ts"
import { renderMarkdown } from "./markdown.ts"
import type { Report } from "./Report.ts"

/** `2026-11-25T18-30-00Z`: sorts by time and holds no `:`, which some filesystems and tools refuse. */
const folderName = (generatedAt: string) => {
  const date = new Date(generatedAt)
  if (Number.isNaN(date.getTime())) throw new Error(`report.generated_at is not a date: ${generatedAt}`)
  return `${date.toISOString().slice(0, 19).replaceAll(":", "-")}Z`
}

/** A fresh folder: two reports generated within the same second get `-2`, `-3`, ... rather than mixing. */
const makeFolder = async (reportsDir: string, name: string) => {
  for (let attempt = 1; ; attempt++) {
    const candidate = attempt === 1 ? name : `${name}-${attempt}`
    try {
      await mkdir(join(reportsDir, candidate))
      return candidate
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error
    }
  }
}

/**
 * Readers may open `latest` while a run finishes: a new link is made beside it and renamed over it,
 * so that `latest` always names a complete report. Relative, so the reports folder can be moved.
 */
const pointLatest = async (reportsDir: string, name: string) => {
  const temporary = join(reportsDir, `.latest-${process.pid}-${randomBytes(4).toString("hex")}`)
  await symlink(name, temporary)
  try {
    await rename(temporary, join(reportsDir, "latest"))
  } catch (error) {
    await rm(temporary, { force: true })
    throw error
  }
}

/** Returns the report's folder, `reportsDir/<timestamp>`. */
export const writeReport = async (report: Report, reportsDir: string): Promise<string> => {
  await mkdir(reportsDir, { recursive: true })
  const name = await makeFolder(reportsDir, folderName(report.generated_at))
  const folder = join(reportsDir, name)
  await Promise.all([
    writeFile(join(folder, "report.json"), `${JSON.stringify(report, null, 2)}\n`),
    writeFile(join(folder, "report.html"), renderHtml(report)),
    writeFile(join(folder, "report.md"), renderMarkdown(report)),
  ])
  await pointLatest(reportsDir, name)
  return folder
}
