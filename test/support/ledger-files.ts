import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isCallRecord } from '../../src/ledger/record';

// What a ledger directory written by an application process holds, read straight from its files.

/** Request ids in the ledger's segments, in order (a repeat shows up twice). */
export function storedIds(dir: string): string[] {
  let names: string[] = [];
  try {
    names = readdirSync(join(dir, 'segments')).sort();
  } catch {
    return [];
  }
  return names
    .flatMap((name) => readFileSync(join(dir, 'segments', name), 'utf8').split('\n'))
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line).record)
    // The process's audit.start record has no request id: it is not a call.
    .filter((record) => record.action !== 'audit.start')
    .map((record) => record.request_id as string);
}

/** Request ids in pending/ journals (kept durably for the next writer to append). */
export function journaledIds(dir: string): string[] {
  let names: string[] = [];
  try {
    names = readdirSync(join(dir, 'pending')).filter((name) => name.endsWith('.jsonl') && !name.startsWith('.'));
  } catch {
    return [];
  }
  return names
    .flatMap((name) => readFileSync(join(dir, 'pending', name), 'utf8').split('\n'))
    .filter((line) => line.endsWith('}'))
    .map((line) => JSON.parse(line) as { record?: { request_id: string }; request_id?: string })
    .map((entry) => (entry.record ?? entry).request_id!)
    // A journaled audit.start record has a null request id: it is not a call.
    .filter((id) => typeof id === 'string');
}


/** The call records in the ledger's segments, in order (ledger bookkeeping records left out). */
export function storedCallRecords(dir: string): Record<string, unknown>[] {
  return readdirSync(join(dir, 'segments'))
    .sort()
    .flatMap((name) => readFileSync(join(dir, 'segments', name), 'utf8').split('\n'))
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line).record as Record<string, unknown>)
    .filter(isCallRecord);
}

/** Every byte of every file in the ledger directory (for scanning it for what must not be there). */
export function ledgerBytes(dir: string): Buffer {
  return Buffer.concat(
    readdirSync(dir, { recursive: true, withFileTypes: true })
      .filter((entry) => entry.isFile())
      .map((entry) => readFileSync(join(entry.parentPath, entry.name))),
  );
}
