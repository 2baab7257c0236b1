/** Replicas with a balancer over them, started and stopped around a describe block or a single test. */
import { afterAll, beforeAll, onTestFinished } from "vitest"
import { type Balancer, startBalancer } from "./balancer.ts"
import { type ReplicaOptions, type ReplicaSet, startReplicas } from "./replicas.ts"

export interface ClusterOptions extends ReplicaOptions {
  /** How many replicas; 3 unless told. */
  readonly replicas?: number
}

export interface Cluster {
  readonly set: ReplicaSet
  /** The in-process balancer, given `REPLICAS` naming the set and the caller's variables on top. */
  readonly lb: Balancer
}

/**
 * Registers `beforeAll`/`afterAll` in the calling describe block: replicas start, then a balancer over
 * them with `env`; after the block the balancer closes, then the replicas stop. The returned object's
 * `set` and `lb` are there once `beforeAll` has run, so read them in tests and hooks, not at collection.
 */
export const useCluster = (env: Record<string, string> = {}, options: ClusterOptions = {}): Cluster => {
  const { replicas = 3, ...replicaOptions } = options
  let set: ReplicaSet | undefined
  let lb: Balancer | undefined
  beforeAll(async () => {
    set = await startReplicas(replicas, replicaOptions)
    lb = await startBalancer({ REPLICAS: set.origins, ...env })
  })
  afterAll(async () => {
    await lb?.close()
    await set?.stopAll()
  })
  const started = <A>(value: A | undefined, what: string): A => {
    if (value === undefined) throw new Error(`useCluster: the ${what} is read before beforeAll started it`)
    return value
  }
  return {
    get set() {
      return started(set, "replica set")
    },
    get lb() {
      return started(lb, "balancer")
    },
  }
}

/** The same inside one test: starts both now and stops them when the test finishes, however it ends. */
export const startCluster = async (
  env: Record<string, string> = {},
  options: ClusterOptions = {},
): Promise<Cluster> => {
  const { replicas = 3, ...replicaOptions } = options
  const set = await startReplicas(replicas, replicaOptions)
  onTestFinished(() => set.stopAll())
  const lb = await startBalancer({ REPLICAS: set.origins, ...env })
  onTestFinished(() => lb.close())
  return { set, lb }
}
