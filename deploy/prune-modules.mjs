// Leaves only what the programs need at run time in <app>/node_modules, offline, from the lockfile:
// removes every package npm marks `"dev": true` in package-lock.json (what `npm ci --omit=dev`
// would not install), then type declarations, source maps, docs and Effect's TypeScript sources.
// Runs inside `docker build` (exec form, the base image may have no shell) and is idempotent:
// on a node_modules already installed with --omit=dev only the trimming does anything.
//
//   node deploy/prune-modules.mjs /app
import { existsSync, readdirSync, readFileSync, rmdirSync, rmSync } from "node:fs"
import { join } from "node:path"

const app = process.argv[2] ?? "."
const lock = JSON.parse(readFileSync(join(app, "package-lock.json"), "utf8"))
let packages = 0
for (const [path, entry] of Object.entries(lock.packages ?? {})) {
  if (path === "" || entry.dev !== true) continue
  const dir = join(app, path)
  if (existsSync(dir)) {
    rmSync(dir, { recursive: true, force: true })
    packages++
  }
}

const dropFile = (name) =>
  /\.(d\.[mc]?ts|map)$/.test(name) || /^(README|CHANGELOG|HISTORY)(\.md)?$/i.test(name)
let files = 0
const walk = (dir) => {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = join(dir, entry.name)
    if (entry.isDirectory()) {
      walk(full)
      if (readdirSync(full).length === 0) rmdirSync(full)
    } else if (entry.isFile() && dropFile(entry.name)) {
      rmSync(full)
      files++
    }
  }
}
const modules = join(app, "node_modules")
// Effect's packages ship their TypeScript sources beside dist/ for editors; nothing imports them.
for (const source of [
  "effect/src",
  ...readdirSafe(join(modules, "@effect")).map((name) => `@effect/${name}/src`),
]) {
  rmSync(join(modules, source), { recursive: true, force: true })
}
if (existsSync(modules)) walk(modules)
console.log(`prune-modules: removed ${packages} dev packages and ${files} files not needed at run time`)

function readdirSafe(dir) {
  return existsSync(dir) ? readdirSync(dir) : []
}
