/** The minified Vega, Vega-Lite and Vega-Embed browser builds, read from node_modules to inline in a page. */
import { readFileSync } from "node:fs"
import { createRequire } from "node:module"
import { dirname, join } from "node:path"

const require = createRequire(import.meta.url)

// The packages export only their ES modules; the browser builds sit beside them in build/, so the
// entry point's folder is found through the resolver, which works from any working directory.
const bundles = [
  ["vega", "vega.min.js"],
  ["vega-lite", "vega-lite.min.js"],
  ["vega-embed", "vega-embed.min.js"],
] as const

const inlineSafe = (source: string) =>
  source
    // The maps are not shipped with the page: a reference to one would be a request for a missing file.
    .replace(/\n?\/\/# sourceMappingURL=\S+\s*$/, "\n")
    // Inside <script>, this sequence would end the element early; escaped, it means the same to JS.
    .replaceAll("</script", "<\\/script")

let cached: ReadonlyArray<string> | undefined

/** The three builds' source, in load order (Vega-Lite and Vega-Embed need the globals before them). */
export const vegaBundles = (): ReadonlyArray<string> => {
  cached ??= bundles.map(([name, file]) =>
    inlineSafe(readFileSync(join(dirname(require.resolve(name)), file), "utf8")),
  )
  return cached
}
