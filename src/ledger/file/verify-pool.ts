/**
 * verify's worker threads for the file ledger: hands whole segments to verify-worker.ts and yields
 * their facts in segment order. Memory stays bounded: at most two segments per worker are asked
 * for ahead of the one verify is consuming, and each answer holds 32 bytes per line (the leaf
 * hashes), not the lines. A worker that fails (throws, exits, cannot start) fails verify with
 * LEDGER_VERIFY_INCOMPLETE: a verify that could not look at every segment never passes.
 */
import { existsSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { LedgerError } from '../errors';
import { segmentPath } from './layout';
import type { SegmentFacts } from '../backend';
import type { SegmentRequest } from './verify-worker';

/** Below this many bytes of segments, starting threads costs more than it saves (auto mode). */
const AUTO_MIN_BYTES = 16 << 20;
/** Threads in auto mode, at most. */
const AUTO_MAX_WORKERS = 4;
/** Segments asked for per worker ahead of the one being consumed. */
const AHEAD_PER_WORKER = 2;

/** The compiled worker script beside this file (absent when running from the TypeScript sources). */
const WORKER_SCRIPT = join(__dirname, 'verify-worker.js');

/**
 * How many workers verify uses for these segments: `requested` when given (0: none), else as many
 * as the machine has cores (at most AUTO_MAX_WORKERS) when the segments are large enough to gain.
 * 0 when the worker script is not built.
 */
export function verifyWorkerCount(dir: string, segments: readonly string[], requested: number | undefined): number {
  if (requested === 0 || segments.length === 0 || !existsSync(WORKER_SCRIPT)) return 0;
  if (requested !== undefined) return Math.min(requested, segments.length);
  let bytes = 0;
  for (const name of segments) {
    try {
      bytes += statSync(segmentPath(dir, name)).size;
    } catch {
      return 0; // the single-thread walk reports it
    }
  }
  const cores = availableParallelism();
  return bytes < AUTO_MIN_BYTES || cores < 2 ? 0 : Math.min(cores, AUTO_MAX_WORKERS, segments.length);
}

interface Asked {
  facts: Promise<SegmentFacts>;
  resolve(facts: SegmentFacts): void;
  reject(error: unknown): void;
}

function failed(why: string): LedgerError {
  return new LedgerError('LEDGER_VERIFY_INCOMPLETE', `a verify worker thread failed (${why}): the ledger was not verified; run verify again, with --workers 0 to use no threads`);
}

/** The facts of each segment, in order, from `count` worker threads. */
export async function* segmentFactsInOrder(dir: string, segments: readonly string[], count: number): AsyncGenerator<SegmentFacts> {
  const workers: Worker[] = [];
  const queues: Asked[][] = [];
  const asked: Asked[] = [];
  const failAll = (queue: Asked[], error: LedgerError): void => {
    for (const a of queue.splice(0)) a.reject(error);
  };
  try {
    for (let w = 0; w < count; w++) {
      const worker = new Worker(WORKER_SCRIPT);
      const queue: Asked[] = [];
      worker.on('message', (facts: SegmentFacts) => queue.shift()?.resolve(facts));
      worker.on('error', (error) => failAll(queue, failed(error instanceof Error ? error.message : String(error))));
      worker.on('exit', (code) => failAll(queue, failed(`it exited with code ${code}`)));
      workers.push(worker);
      queues.push(queue);
    }
    const ask = (i: number): void => {
      let resolve!: (facts: SegmentFacts) => void;
      let reject!: (error: unknown) => void;
      const facts = new Promise<SegmentFacts>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      // Rejected before verify awaits it (a worker died with several segments asked): not unhandled.
      facts.catch(() => {});
      const a = { facts, resolve, reject };
      asked[i] = a;
      queues[i % count]!.push(a);
      const request: SegmentRequest = { dir, segment: segments[i]! };
      workers[i % count]!.postMessage(request);
    };
    let next = 0;
    for (let i = 0; i < segments.length; i++) {
      while (next < segments.length && next <= i + count * AHEAD_PER_WORKER) ask(next++);
      const facts = await asked[i]!.facts;
      delete asked[i];
      if (facts.segment !== segments[i]) throw failed(`it answered for ${facts.segment} when asked for ${segments[i]}`);
      yield facts;
    }
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}
