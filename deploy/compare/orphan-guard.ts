/** Preloaded into every child of the benchmark: exits when the parent is gone, so no child outlives it. */

// A parent killed with SIGKILL runs no cleanup; its IPC channel closing is the one signal left.
process.on("disconnect", () => process.exit(0))
// The channel must not keep an otherwise finished process alive.
process.channel?.unref()
