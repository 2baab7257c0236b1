/**
 * Preloaded into a balancer process by the soak (`--expose-gc --import` this file): on SIGUSR2 it runs a
 * full garbage collection and says so on stderr, so memory is compared between two comparable states
 * instead of two arbitrary points of V8's sawtooth. The balancer's own code is untouched.
 */
let collections = 0

process.on("SIGUSR2", () => {
  const gc = (globalThis as { gc?: () => void }).gc
  if (gc === undefined) {
    process.stderr.write("[faults-gc] unavailable: start node with --expose-gc\n")
    return
  }
  // Twice: objects with finalizers or weak references are freed only by the second collection.
  gc()
  gc()
  collections++
  process.stderr.write(`[faults-gc] collected ${collections}\n`)
})
