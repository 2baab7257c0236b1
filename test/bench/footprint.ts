/**
 * `npm run bench:footprint`: how fast the balancer starts and how much memory it holds when idle, run
 * as the images and `npm start` run it (the bundle `npm run build` writes, with glibc's trim threshold
 * fixed), the bundle with glibc's defaults, and as development runs it (the TypeScript sources
 * through tsx), alternating, five processes of each. Start is from spawn to the "load balancer
 * listening" line; idle memory is the resident set 5 s later.
 */
import { spawn, spawnSync } from "node:child_process"
import { readFileSync } from "node:fs"
import { setTimeout as sleep } from "node:timers/promises"
import { fileURLToPath } from "node:url"
import { BUNDLE_ENV } from "../../src/process/balancer.ts"
import { formatTable, median } from "./report.ts"

const root = fileURLToPath(new URL("../..", import.meta.url))
const RUNS = 5
const IDLE_MS = 5_000

/** A balancer over one replica address that never answers: nothing to do but stay up. */
const idleBalancer = {
  ...process.env,
  REPLICAS: "http://127.0.0.2:9",
  LB_HOST: "127.0.0.1",
  LB_PORT: "0",
  HEALTH_CHECK_INTERVAL: "60",
}
const fixedTrim = { ...idleBalancer, ...BUNDLE_ENV }

const contenders: Record<string, { readonly args: ReadonlyArray<string>; readonly env: NodeJS.ProcessEnv }> =
  {
    "bundle (npm start, images)": { args: ["dist/load-balancer.mjs"], env: fixedTrim },
    "bundle, glibc's dynamic trim": { args: ["dist/load-balancer.mjs"], env: idleBalancer },
    "sources through tsx": { args: ["--import", "tsx", "src/main.ts"], env: fixedTrim },
  }

const residentMiB = (pid: number) =>
  Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? Number.NaN) / 1024

const once = async ({ args, env }: (typeof contenders)[string]) => {
  const started = performance.now()
  const child = spawn(process.execPath, args, { cwd: root, env, stdio: ["ignore", "pipe", "inherit"] })
  try {
    const listeningMs = await new Promise<number>((resolve, reject) => {
      let text = ""
      child.stdout.on("data", (chunk: Buffer) => {
        text += chunk.toString("utf8")
        if (text.includes("load balancer listening")) resolve(performance.now() - started)
      })
      child.once("exit", (code) =>
        reject(new Error(`${args.join(" ")} exited with ${code} before listening`)),
      )
    })
    await sleep(IDLE_MS)
    return { listeningMs, rssMiB: residentMiB(child.pid!) }
  } finally {
    child.kill("SIGTERM")
  }
}

const build = spawnSync("npm", ["run", "--silent", "build"], { cwd: root, stdio: "inherit" })
if (build.status !== 0) throw new Error("npm run build failed")

const results = new Map<string, Array<{ listeningMs: number; rssMiB: number }>>()
for (let run = 0; run < RUNS; run++) {
  for (const [name, contender] of Object.entries(contenders)) {
    const result = await once(contender)
    results.set(name, [...(results.get(name) ?? []), result])
  }
}
console.log(`node ${process.version}; ${RUNS} processes of each, alternating; medians, with the range`)
console.log(
  formatTable(
    ["how it runs", "start → listening ms", "range", "idle RSS MiB", "range"],
    [...results].map(([name, runs]) => {
      const starts = runs.map((r) => r.listeningMs)
      const rss = runs.map((r) => r.rssMiB)
      return [
        name,
        median(starts).toFixed(0),
        `${Math.min(...starts).toFixed(0)}–${Math.max(...starts).toFixed(0)}`,
        median(rss).toFixed(1),
        `${Math.min(...rss).toFixed(1)}–${Math.max(...rss).toFixed(1)}`,
      ]
    }),
  ),
)
