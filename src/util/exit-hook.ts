/**
 * `process.exit()` (or an uncaught exception) ends the process without running anything
 * asynchronous: no flush, no shutdown. The synchronous `exit` event is the one moment left to
 * write down what is still only in memory. One listener serves every pipeline of the package.
 */
const callbacks = new Set<() => void>();
let installed = false;

function runAll(): void {
  for (const callback of [...callbacks]) {
    callbacks.delete(callback);
    try {
      callback();
    } catch {
      // The process is exiting; each callback reports its own failures.
    }
  }
}

/** Runs `callback` on the `exit` event, unless the returned function is called first. */
export function atProcessExit(callback: () => void): () => void {
  if (!installed) {
    installed = true;
    process.on('exit', runAll);
  }
  callbacks.add(callback);
  return () => {
    callbacks.delete(callback);
  };
}
