/** Child entry for `bench:agent --cpu-prof`: the agent itself, profiled only while the benchmark says so. */
import { writeFileSync } from "node:fs"
import { Session } from "node:inspector"

// Node 20 refuses --cpu-prof in NODE_OPTIONS, and a whole-life profile would be mostly tsx compiling
// at start: the in-process inspector profiles exactly the measured phases instead.
const session = new Session()
session.connect()

type Command = { readonly profile: "start" } | { readonly profile: "stop"; readonly path: string }

const start = () =>
  session.post("Profiler.enable", () =>
    session.post("Profiler.start", () => process.send?.({ profile: "started" })),
  )

const stop = (path: string) =>
  session.post("Profiler.stop", (error, result) => {
    if (error === null) writeFileSync(path, JSON.stringify(result.profile))
    process.send?.({ profile: "stopped", error: error?.message ?? null })
  })

process.on("message", (message: Command) => {
  if (message.profile === "start") start()
  else stop(message.path)
})

await import("../../agent/main.ts")
