/**
 * `npm run demo` / `npm run compare -- --target swarm`: compares the algorithms (and NGINX and HAProxy
 * where installed) on the scenarios of scenarios.ts, prints a table per scenario and writes a report.
 */
import * as Command from "@effect/cli/Command"
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as Options from "@effect/cli/Options"
import * as ValidationError from "@effect/cli/ValidationError"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Data, Effect, Option } from "effect"
import { ALGORITHMS, type Algorithm } from "../../src/domain/Algorithm.ts"
import { stopChildrenOnExit } from "../../src/process/children.ts"
import { consoleProgress, formatGoals, formatReferences } from "./console.ts"
import { withEvidence } from "./evidence.ts"
import { startLocalTarget } from "./local-target.ts"
import { DEMO, describePlan, PRECISE, resolvePlan } from "./plan.ts"
import type { Report } from "./report/Report.ts"
import { writeReport } from "./report/write.ts"
import { compare } from "./run.ts"
import { SCENARIOS } from "./scenarios.ts"
import { startSwarmTarget } from "./swarm-target.ts"

const list = <A extends string>(name: string, allowed: ReadonlyArray<A>, description: string) =>
  Options.text(name).pipe(
    Options.withDescription(`${description} (comma-separated, some of ${allowed.join(", ")})`),
    Options.mapEffect((value) => {
      const items = value.split(",").map((item) => item.trim())
      const unknown = items.filter((item) => !(allowed as ReadonlyArray<string>).includes(item))
      return unknown.length === 0
        ? Effect.succeed(items as Array<A>)
        : Effect.fail(
            ValidationError.invalidValue(
              HelpDoc.p(`--${name}: unknown ${unknown.join(", ")}; expected some of ${allowed.join(", ")}`),
            ),
          )
    }),
    Options.optional,
  )

const options = {
  target: Options.choice("target", ["local", "swarm"]).pipe(
    Options.withDefault("local"),
    Options.withDescription("local: the embedded cluster of processes; swarm: the deployed stack"),
  ),
  precise: Options.boolean("precise").pipe(
    Options.withDescription(
      `long enough to decide the goals: ${PRECISE.rounds} rounds of ${PRECISE.durationS} s (the demo: ` +
        `${DEMO.rounds} of ${DEMO.durationS} s); the options below override either`,
    ),
  ),
  loadReports: Options.choice("load-reports", ["on", "off"]).pipe(
    Options.withDefault("on"),
    Options.withDescription("whether the replicas send their own load reports with each answer"),
  ),
  rounds: Options.integer("rounds").pipe(
    Options.optional,
    Options.withDescription(
      "runs per algorithm and scenario, the algorithms taking turns; pooled in the report",
    ),
  ),
  duration: Options.integer("duration").pipe(
    Options.optional,
    Options.withDescription("seconds measured per run"),
  ),
  warmup: Options.integer("warmup").pipe(
    Options.optional,
    Options.withDescription("seconds of load before each measurement, not counted"),
  ),
  scenarios: list(
    "scenarios",
    SCENARIOS.map((scenario) => scenario.name),
    "scenarios to run (default: all)",
  ),
  algorithms: list<Algorithm>(
    "algorithms",
    ALGORITHMS,
    `SwarmGuard algorithms to run (default: ${DEMO.algorithms.join(", ")})`,
  ),
  noReferences: Options.boolean("no-references").pipe(
    Options.withDescription("skip NGINX and HAProxy even where installed"),
  ),
  stack: Options.text("stack").pipe(
    Options.withDefault(process.env.STACK ?? "swarmguard"),
    Options.withDescription("swarm: the stack's name (STACK)"),
  ),
  balancer: Options.text("balancer").pipe(
    Options.withDefault("http://127.0.0.1:8081"),
    Options.withDescription("swarm: the balancer's published address"),
  ),
  agents: Options.text("agents").pipe(
    Options.withDefault("http://127.0.0.1:8082"),
    Options.withDescription("swarm: every node's monitoring agent, comma-separated"),
  ),
  reports: Options.text("reports").pipe(
    Options.withDefault("reports"),
    Options.withDescription("folder the report goes to (a timestamped folder inside, and `latest`)"),
  ),
}

/** A cluster that cannot start or a run that fails: one line for the user, exit code 1. */
class CompareFailed extends Data.TaggedError("CompareFailed")<{ readonly message: string }> {}

const attempt = <A>(run: () => Promise<A>) =>
  Effect.tryPromise({
    try: run,
    catch: (error) => new CompareFailed({ message: error instanceof Error ? error.message : String(error) }),
  })

const command = Command.make("compare", options, (given) =>
  Effect.gen(function* () {
    const plan = resolvePlan({
      precise: given.precise,
      rounds: Option.getOrUndefined(given.rounds),
      durationS: Option.getOrUndefined(given.duration),
      warmupS: Option.getOrUndefined(given.warmup),
      algorithms: Option.getOrUndefined(given.algorithms),
      scenarios: Option.getOrUndefined(given.scenarios),
      loadReports: given.loadReports === "on",
    })
    const start = () =>
      given.target === "local"
        ? startLocalTarget(plan.algorithms, !given.noReferences)
        : startSwarmTarget(plan.algorithms, {
            stack: given.stack,
            balancer: given.balancer,
            agents: given.agents.split(",").map((agent) => agent.trim()),
          })
    const measured: Report = yield* Effect.acquireUseRelease(
      attempt(start),
      (target) =>
        Effect.sync(() => console.log(describePlan(plan, target.contenders))).pipe(
          Effect.andThen(attempt(() => compare(target, plan.options, consoleProgress()))),
        ),
      (target) => Effect.promise(() => target.close()),
    )
    const report = withEvidence(measured)
    const folder = yield* Effect.promise(() => writeReport(report, given.reports))
    yield* Effect.sync(() => {
      console.log(`\n${formatReferences(report)}`)
      console.log(`\n${formatGoals(report)}`)
      console.log(`\nreport: ${folder}/report.html (also report.json, report.md; ${given.reports}/latest)`)
    })
  }).pipe(
    Effect.catchTag("CompareFailed", (failure) =>
      Effect.sync(() => {
        process.stderr.write(`compare: ${failure.message}\n`)
        process.exitCode = 1
      }),
    ),
  ),
).pipe(Command.withDescription("Compare SwarmGuard's algorithms with each other and with NGINX and HAProxy"))

stopChildrenOnExit()
Command.run(command, { name: "compare", version: "0.1.0" })(process.argv).pipe(
  Effect.provide(NodeContext.layer),
  NodeRuntime.runMain,
)
