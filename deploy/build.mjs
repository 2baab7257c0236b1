// `npm run build`: the three programs compiled to one JavaScript file each, in dist/, for the images
// and `npm start`. esbuild bundles each with the parts of its dependencies it uses (Effect's modules
// are tree-shaken), which a measured run found faster to start and smaller in memory than tsc's
// file-per-module output (README, "Build"). dockerode stays a package: it loads its gRPC protocol
// files from its own folder, and its SSH transport has optional native parts.
//
// dist/runtime-packages.json lists the packages the bundles still import at run time: the images
// keep those (and what they depend on) and drop the rest of node_modules (deploy/prune-modules.mjs).
import { rmSync, writeFileSync } from "node:fs"
import { isBuiltin } from "node:module"
import { build } from "esbuild"

// Only what this build writes: nothing stale from an earlier one reaches an image.
rmSync("dist", { recursive: true, force: true })

const { metafile } = await build({
  entryPoints: {
    "load-balancer": "src/main.ts",
    agent: "agent/main.ts",
    "web-stress": "deploy/web-stress/main.ts",
  },
  outdir: "dist",
  outExtension: { ".js": ".mjs" },
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  external: ["dockerode"],
  metafile: true,
  logLevel: "warning",
  // Bundled CommonJS packages call require(); an ES module has none of its own.
  banner: {
    js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
  },
})

const packageOf = (specifier) => /^(@[^/]+\/)?[^/]+/.exec(specifier)[0]
const runtimePackages = new Set(
  Object.values(metafile.outputs)
    .flatMap((output) => output.imports)
    .filter((entry) => entry.external && !entry.path.startsWith("node:") && !isBuiltin(entry.path))
    .map((entry) => packageOf(entry.path)),
)
writeFileSync("dist/runtime-packages.json", `${JSON.stringify([...runtimePackages].sort())}\n`)
