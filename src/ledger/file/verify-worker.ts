/**
 * A verify worker thread (node:worker_threads, started by verify-pool.ts): does the per-line work
 * of `llm-audit verify` for whole segments, one at a time, so that it runs on several cores. For
 * each line: the leaf hash of the bytes on disk, the canonical form, seq and prev (checked against
 * the line before it in the same segment), the segment summary rebuilt and compared
 * (SummaryCheck), the record's time. It answers with the leaf hashes and those facts; the main
 * thread joins the segments (first seq and prev against the previous segment), builds the Merkle
 * tree and checks the checkpoints, in order.
 *
 * It never decides that something is wrong: a segment with anything unusual in it (a torn or
 * non-canonical line, a break in seq or prev, a summary that disagrees) is answered `clean: false`,
 * and verify walks the ledger again on one thread (chain.ts), which names the first bad record
 * exactly as it always has. So the workers can only make a clean ledger faster, never pass one
 * that the single-thread walk fails.
 */
import { readFileSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import type { SegmentFacts } from '../backend';
import { canonicalEntry, recordActionIs, type AcceptedEntry } from '../chain';
import { leafHashInPlace } from '../merkle';
import { GAP_ACTION, RECOVERED_ACTION } from '../record';
import { segmentLabel, segmentPath } from './layout';
import { SUMMARY_MEMBERS, SummaryCheck } from './summary';

export interface SegmentRequest {
  dir: string;
  segment: string;
}


export function segmentFacts({ dir, segment }: SegmentRequest): SegmentFacts {
  const unclean = (why: string): SegmentFacts => ({ clean: false, segment, why });
  let data: Buffer;
  try {
    data = readFileSync(segmentPath(dir, segment));
  } catch (error) {
    return unclean(`cannot read it: ${(error as Error).message}`); // the single-thread walk reports it
  }
  const label = segmentLabel(segment);
  let lines = 0;
  for (let at = data.indexOf(0x0a); at !== -1; at = data.indexOf(0x0a, at + 1)) lines++;
  if (data.length === 0) return { clean: true, segment, file: label, lines: 0, firstSeq: 0, firstPrev: '', leaves: new Uint8Array(0), markers: [], period: null, summary: { missing: false, partial: false } };
  if (data[data.length - 1] !== 0x0a) return unclean('a torn line');
  const leaves = new Uint8Array(lines * 32);
  const markers: Array<{ index: number; offset: number; raw: string }> = [];
  const check = new SummaryCheck(dir);
  let firstPrev = '';
  let firstSeq = 0;
  let lastLeafHex = '';
  let period: [string, string] | null = null;
  let start = 0;
  for (let i = 0; i < lines; i++) {
    const nl = data.indexOf(0x0a, start);
    // Decoded before the hash overwrites the byte before the line (leafHashInPlace).
    const raw = data.toString('utf8', start, nl);
    const leaf = leafHashInPlace(data, start, nl);
    leaves.set(leaf, i * 32);
    // The record's members the summary and the period read, parsed one by one as the canonical
    // check passes them: JSON.parse of the whole line was a fifth of the per-line work.
    const members: Record<string, unknown> = {};
    const entry = canonicalEntry(raw, (nameStart, nameEnd, valueEnd) => {
      const name = raw.slice(nameStart + 1, nameEnd - 1);
      if (!SUMMARY_MEMBERS.has(name)) return;
      // A string with no escape is its text between the quotes (canonical: nothing else to decode).
      const text = raw.slice(nameEnd + 1, valueEnd);
      members[name] = text.charCodeAt(0) === 0x22 && !text.includes('\\') ? text.slice(1, -1) : JSON.parse(text);
    });
    if (entry === undefined) return unclean(`line ${i + 1} is not a canonical entry`);
    if (i === 0) {
      firstSeq = entry.seq;
      firstPrev = entry.prev;
    } else if (entry.seq !== firstSeq + i || entry.prev !== lastLeafHex) {
      return unclean(`line ${i + 1} does not continue the line before it`);
    }
    lastLeafHex = leaf.toString('hex');
    if (recordActionIs(raw, RECOVERED_ACTION) || recordActionIs(raw, GAP_ACTION)) markers.push({ index: i, offset: start, raw });
    const accepted: AcceptedEntry = { entry: { seq: entry.seq, prev: entry.prev, record: members }, leaf, raw, location: { file: label, line: i + 1, offset: start } };
    check.accept(accepted);
    const ts = members.timestamp;
    if (typeof ts === 'string') {
      if (period === null) period = [ts, ts];
      else if (ts < period[0]) period[0] = ts;
      else if (ts > period[1]) period[1] = ts;
    }
    start = nl + 1;
  }
  let summary;
  try {
    summary = check.settle(segment);
  } catch (error) {
    return unclean(`its summary: ${(error as Error).message}`);
  }
  return { clean: true, segment, file: label, lines, firstSeq, firstPrev, leaves, markers, period, summary };
}

// As a worker: one answer per request, in the order asked; the leaf hashes are moved, not copied.
if (parentPort) {
  const port = parentPort;
  port.on('message', (request: SegmentRequest) => {
    const facts = segmentFacts(request);
    port.postMessage(facts, facts.clean ? [facts.leaves.buffer as ArrayBuffer] : []);
  });
}
