/**
 * Every installed package supports every Node version the project declares: what `npm ci` would
 * otherwise warn about (EBADENGINE) fails here, naming the package, before a user on the oldest
 * declared Node meets it.
 */
import { readFileSync } from "node:fs"
import { subset } from "semver"
import { describe, expect, it } from "vitest"

interface Lockfile {
  readonly packages: Record<string, { readonly version?: string; readonly engines?: unknown }>
}

const read = <A>(file: string): A =>
  JSON.parse(readFileSync(new URL(`../../${file}`, import.meta.url), "utf8")) as A

describe("Node engines", () => {
  it("every locked package accepts the Node versions package.json declares", () => {
    const declared = read<{ engines: { node: string } }>("package.json").engines.node
    const { packages } = read<Lockfile>("package-lock.json")
    const refusing = Object.entries(packages).flatMap(([path, { version, engines }]) => {
      // `engines` is usually an object; a few old packages wrote an array, which npm ignores.
      const wanted =
        engines !== null && typeof engines === "object" && !Array.isArray(engines)
          ? (engines as { node?: unknown }).node
          : undefined
      if (path === "" || typeof wanted !== "string") return []
      return subset(declared, wanted)
        ? []
        : [`${path.replace(/^.*node_modules\//, "")}@${version} wants node ${wanted}`]
    })
    expect(refusing, `package.json declares node ${declared}`).toEqual([])
  })
})
