// Leaves only what the programs need at run time in <app>/node_modules, offline, from the lockfile.
// The bundles in dist/ carry their dependencies inside them, except the packages `npm run build`
// lists in dist/runtime-packages.json: those are kept with everything they depend on (found through
// package-lock.json as Node's resolution would find them), and every other package is removed.
// Type declarations, source maps and docs go too. Runs inside `docker build` (exec form: the base
// image may have no shell), is idempotent, and needs no network.
//
//   node deploy/prune-modules.mjs /app
import { existsSync, readdirSync, readFileSync, rmdirSync, rmSync } from "node:fs"
import { join } from "node:path"

const app = process.argv[2] ?? "."
const lock = JSON.parse(readFileSync(join(app, "package-lock.json"), "utf8"))
const runtimePackages = JSON.parse(readFileSync(join(app, "dist/runtime-packages.json"), "utf8"))
const installed = lock.packages ?? {}

/** Where Node finds `name` when `from` (a lockfile path, "" for the app) requires it. */
const resolve = (from, name) => {
  for (let dir = from; ; dir = dir.replace(/\/?node_modules\/(@[^/]+\/)?[^/]+$/, "")) {
    const candidate = `${dir === "" ? "" : `${dir}/`}node_modules/${name}`
    if (candidate in installed) return candidate
    if (dir === "") return undefined
  }
}

const kept = new Set()
const keep = (path) => {
  if (path === undefined || kept.has(path)) return
  kept.add(path)
  const { dependencies, optionalDependencies, peerDependencies } = installed[path]
  for (const name of Object.keys({ ...dependencies, ...optionalDependencies, ...peerDependencies })) {
    keep(resolve(path, name))
  }
}
for (const name of runtimePackages) keep(resolve("", name))

let packages = 0
for (const path of Object.keys(installed)) {
  // Nested packages go with their parent's folder; the rest one by one.
  if (path === "" || kept.has(path) || !existsSync(join(app, path))) continue
  rmSync(join(app, path), { recursive: true, force: true })
  packages++
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
if (existsSync(modules)) walk(modules)
console.log(
  `prune-modules: kept ${kept.size} packages for ${runtimePackages.join(", ")}; removed ${packages} and ${files} files not needed at run time`,
)
