/** Preloaded into each child `startChild` starts: it exits once its parent is gone, so none outlives it. */

// A parent killed with SIGKILL runs no cleanup; its IPC channel closing is the one signal left.
process.on("disconnect", () => process.exit(0))
// The channel must not keep an otherwise finished process alive.
process.channel?.unref()
