/** The unaudited-request watcher (issue 25): see watcher.ts. */
export { startUnauditedWatcher, UnauditedLlmRequestError, type UnauditedWatcherOptions } from './watcher';
export { runInAuditedCall } from './audited-call-marker';
export { BUILT_IN_LLM_HOSTS } from './hosts';
