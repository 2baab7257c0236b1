/** The comparison itself: on each scenario, every contender in turn under the same open-loop load. */
import { availableParallelism, loadavg } from "node:os"
import { type Achieved, saturate } from "./capacity.ts"
import { applyConditions, describeChange } from "./conditions.ts"
import { evaluateGoals } from "./goals.ts"
import { runOpenLoop } from "./open-loop.ts"
import type { Report, Row, Scenario } from "./report/Report.ts"
import { computePath, describeCosts, requestPaths, UNIT_COST_MS } from "./requests.ts"
import { type MeasuredRound, type ReplicaCpu, toRow } from "./rows.ts"
import { capacityUnits, meanCostUnits, SCENARIOS, type ScenarioSpec } from "./scenarios.ts"
import type { ComparisonTarget, Contender, CpuWindow } from "./target.ts"
import { BURST_REQUESTS, burst, STACK_WARM_UP_S, warmStack } from "./warm-up.ts"

export interface CompareOptions {
  /** Each contender runs this many times per scenario, the contenders taking turns, and its rounds are pooled. */
  readonly rounds: number
  /** Seconds measured per round. */
  readonly durationS: number
  readonly warmupS: number
  readonly scenarios: ReadonlyArray<string>
  /** Whether the replicas send their own load reports (`endpoint-load-metrics`) with each answer. */
  readonly loadReports: boolean
}

export interface Progress {
  readonly start: (total: number) => void
  readonly step: (label: string) => void
  /** A finished scenario's rows, for a table on the console. */
  readonly scenarioDone: (scenario: Scenario, rows: ReadonlyArray<Row>) => void
  readonly stop: () => void
}

/** A user gives up after this long; what is left unanswered is an error. */
const TIMEOUT_MS = 10_000

type Round = MeasuredRound

/** Why a scenario cannot run on `target`, or undefined when it can. */
const unsupported = (target: ComparisonTarget, scenario: ScenarioSpec): string | undefined => {
  if (scenario.neighbour !== undefined && target.neighbour === undefined)
    return "pinning a CPU hog beside a replica needs the local target's cgroups"
  if (scenario.twoBalancers === true && target.second === undefined)
    return "it needs a second balancer process per contender"
  return undefined
}

/** One round of one contender: the open-loop run and each replica's CPU over its counted part. */
const measure = async (
  target: ComparisonTarget,
  scenario: ScenarioSpec,
  origins: ReadonlyArray<string>,
  rateRps: number,
  options: CompareOptions,
): Promise<Round & { note: string | undefined }> => {
  await target.settle()
  const conditions = await applyConditions(target, scenario, options.warmupS, options.durationS)
  let window: Promise<CpuWindow> | undefined
  let cpuPercent: Promise<Record<string, number>> | undefined
  const contenderCpu = () => {
    const readings = origins.map(target.contenderCpuMs)
    return readings.includes(undefined) ? undefined : readings.reduce<number>((a, b) => a + b!, 0)
  }
  let contenderCpuBefore: number | undefined
  try {
    const result = await runOpenLoop({
      origins,
      pathOf: requestPaths(scenario),
      rateRps,
      durationS: options.durationS,
      warmupS: options.warmupS,
      timeoutMs: TIMEOUT_MS,
      onPhase: (phase) => {
        if (phase === "measuring") {
          contenderCpuBefore = contenderCpu()
          window = target.cpuWindow()
          conditions.measuring()
        } else cpuPercent = window!.then((w) => w.stop())
      },
    })
    // Until the last answer is in: relaying the answers is the contender's work too.
    const contenderCpuAfter = contenderCpu()
    const contenderCpuMs =
      contenderCpuBefore === undefined || contenderCpuAfter === undefined
        ? undefined
        : contenderCpuAfter - contenderCpuBefore
    const percent = await cpuPercent!
    const cores = conditions.cores()
    const cpu: Record<string, ReplicaCpu> = Object.fromEntries(
      target.replicas.map((name) => [name, { percent: percent[name] ?? 0, cores: cores[name]! }]),
    )
    return { result, cpu, contenderCpuMs, note: conditions.note }
  } finally {
    await conditions.undo()
  }
}

const rotate = <A>(items: ReadonlyArray<A>, by: number): Array<A> => {
  const shift = by % Math.max(1, items.length)
  return [...items.slice(shift), ...items.slice(0, shift)]
}

/**
 * Nominal arrival rate: the scenario's share of its capacity, in requests of its mean cost;
 * `perReplicaRps` is what a full replica serves of one-unit requests.
 */
const arrivalRate = (scenario: ScenarioSpec, replicas: ReadonlyArray<string>, perReplicaRps: number) =>
  Math.round((scenario.load * capacityUnits(scenario, replicas) * perReplicaRps) / meanCostUnits(scenario))

const setCapacities = async (target: ComparisonTarget, scenario: ScenarioSpec) => {
  for (const name of target.replicas) await target.setCapacity(name, scenario.capacity[name] ?? 1)
}

const spread = (achieved: Achieved) =>
  `${achieved.mean.toFixed(0)} req/s (per second ${Math.min(...achieved.perSecond)}–${Math.max(...achieved.perSecond)})`

export const compare = async (
  target: ComparisonTarget,
  options: CompareOptions,
  progress: Progress,
): Promise<Report> => {
  const notes: Array<string> = []
  const scenarios = SCENARIOS.filter((scenario) => {
    if (!options.scenarios.includes(scenario.name)) return false
    const why = unsupported(target, scenario)
    if (why !== undefined) notes.push(`${scenario.name} was skipped on the ${target.kind} target: ${why}.`)
    return why === undefined
  })
  // Every replica full: the nominal capacity is per full replica.
  for (const name of target.replicas) await target.setCapacity(name, 1)
  await target.setLoadReports(options.loadReports)
  const unitPath = computePath(1)
  const fullCores = target.cores(target.replicas[0]!)
  const nominalRps = (fullCores * 1000) / UNIT_COST_MS
  const costMs = await target.costMs(unitPath)
  const direct = target.direct(target.replicas[0]!)
  const achieved = direct === undefined ? undefined : await saturate(direct, unitPath)
  // Loads are shares of what a replica really delivers: the request costs more than its 5 ms of work
  // (the HTTP exchange, the replica's own bookkeeping), by an amount that depends on the machine, and
  // a "70 %" load set from the nominal cost ran the replicas at about 85 % of their capacity.
  const perReplicaRps = achieved?.mean ?? nominalRps

  // The whole stack, every contender and every replica, serves the real request at the real rate
  // before anything is measured: the first contender measured must not pay for a cold start. On
  // Swarm, switching the algorithm restarts the balancer, so only the replicas can be warmed ahead;
  // each round's burst and warm-up serve the restarted balancer.
  const first = scenarios[0]
  if (first !== undefined) {
    await setCapacities(target, first)
    const warmed = target.kind === "swarm" ? target.contenders.slice(0, 1) : target.contenders
    for (const contender of warmed)
      await warmStack(
        [await target.use(contender)],
        requestPaths(first),
        arrivalRate(first, target.replicas, perReplicaRps),
      )
  }

  const rows: Array<Row> = []
  const described: Array<Scenario> = []
  progress.start(scenarios.length * target.contenders.length * options.rounds)
  for (const scenario of scenarios) {
    await setCapacities(target, scenario)
    const rateRps = arrivalRate(scenario, target.replicas, perReplicaRps)
    const change = describeChange(target, scenario, options.durationS)
    const summary: Scenario = {
      name: scenario.name,
      description: scenario.description,
      ...(change === undefined ? {} : { change }),
      replicas: Object.fromEntries(target.replicas.map((name) => [name, target.cores(name)])),
      rate_rps: rateRps,
      duration_s: options.durationS * options.rounds,
    }
    described.push(summary)
    const originsOf = async (contender: Contender) => [
      await target.use(contender),
      ...(scenario.twoBalancers === true && target.second !== undefined
        ? [await target.second(contender)]
        : []),
    ]
    if (scenario.twoBalancers === true && target.second !== undefined) {
      // Started together, then warmed: they have only just started, as cold as the first ones were.
      await Promise.all(target.contenders.map(target.second))
      for (const contender of target.contenders)
        await warmStack(await originsOf(contender), requestPaths(scenario), rateRps)
    }
    const measured = new Map<string, Array<Round>>()
    const roundNotes = new Set<string>()
    for (let round = 0; round < options.rounds; round++) {
      // A different contender goes first each round, so none always follows the same one.
      const order = rotate(target.contenders, round)
      for (const contender of order) {
        progress.step(`${scenario.name} · ${contender.name} (round ${round + 1}/${options.rounds})`)
        const origins = await originsOf(contender)
        for (const origin of origins) await burst(origin)
        const { note, ...run } = await measure(target, scenario, origins, rateRps, options)
        if (note !== undefined) roundNotes.add(`${scenario.name}: ${note}`)
        const runs = measured.get(contender.name) ?? []
        runs.push(run)
        measured.set(contender.name, runs)
      }
    }
    notes.push(...roundNotes)
    if (scenario.costs !== undefined)
      notes.push(`${scenario.name}: request costs ${describeCosts(scenario)}.`)
    const scenarioRows = target.contenders.map((contender) =>
      toRow(
        scenario.name,
        contender.name,
        contender.reference,
        rateRps,
        measured.get(contender.name)!,
        change,
      ),
    )
    rows.push(...scenarioRows)
    progress.scenarioDone(summary, scenarioRows)
  }
  progress.stop()

  return {
    generated_at: new Date().toISOString(),
    target: target.kind,
    machine: { cpus: availableParallelism(), node: process.version, load_average: loadavg() },
    scenarios: described,
    references: target.references,
    rows,
    goals: evaluateGoals(rows, described),
    notes: [
      ...target.notes,
      `Each request is GET ${unitPath}: a fixed service cost of ${UNIT_COST_MS} ms of replica CPU per unit, ` +
        `so a full replica (${fullCores} cores) would serve ${nominalRps.toFixed(0)} req/s. ` +
        `Measured here: ${costMs.toFixed(1)} ms of CPU per request, the exchange included` +
        (achieved === undefined
          ? `; loads are shares of the nominal capacity.`
          : `; ${target.replicas[0]} saturated alone for ${achieved.perSecond.length + 1} s delivered ` +
            `${spread(achieved)}, ${((achieved.mean / nominalRps) * 100).toFixed(0)}% of the nominal ` +
            "capacity, and loads are shares of that."),
      `Replicas' own load reports (endpoint-load-metrics): ${options.loadReports ? "on" : "off"}.`,
      target.kind === "swarm"
        ? `Before the first round the replicas served the first scenario's requests at its rate for ` +
          `${STACK_WARM_UP_S} s.`
        : `Before the first round every contender served the first scenario's requests at its rate for ` +
          `${STACK_WARM_UP_S} s (the second processes of two-balancers, too, before that scenario).`,
      `Open-loop load: a fixed arrival rate, latency counted from each request's due time; ` +
        `per row, ${options.rounds} rounds of ${BURST_REQUESTS} /health requests, ${options.warmupS} s of ` +
        `warm-up at the rate and ${options.durationS} s measured, ` +
        "the contenders taking turns, pooled; " +
        `requests unanswered after ${TIMEOUT_MS / 1000} s count as errors.`,
      ...notes,
    ],
  }
}
