/** A routes file in a directory of its own, rewritten the way editors and config tools replace files. */
import { mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

export interface RoutesFile {
  readonly path: string
  /** Replaces the whole file at once (write aside, then rename), so a reader never sees half of it. */
  readonly write: (text: string) => void
  readonly remove: () => void
}

export const routesFile = (text: string): RoutesFile => {
  const dir = mkdtempSync(join(tmpdir(), "swarmguard-routes-"))
  const path = join(dir, "routes.yml")
  let version = 0
  const write = (next: string) => {
    const aside = join(dir, `routes.${version++}.tmp`)
    writeFileSync(aside, next)
    renameSync(aside, path)
  }
  write(text)
  return { path, write, remove: () => rmSync(dir, { recursive: true, force: true }) }
}
