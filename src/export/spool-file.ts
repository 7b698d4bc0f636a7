/**
 * One spool file = one batch of finished spans that could not (yet) be sent over OTLP.
 *
 * Layout: a one-line JSON header, then the body.
 *
 *   {"format":"otel-llm-audit/spool","version":1,"createdAt":"…","pid":…,"spans":N,
 *    "encoding":"gzip","bodyBytes":L,"bodySha256":"…"}\n
 *   <L bytes: the EncodedBatch JSON of span-codec.ts, gzip-compressed>
 *
 * Why a header: a file must say what it is and which version wrote it (a later version of the
 * package may read or refuse it knowingly), and must prove it is whole. The length catches a
 * truncated file, the SHA-256 a corrupted one; both are checked before anything is parsed.
 * Why gzip: audit spans repeat the same attribute keys, so a batch compresses ~10×, which means ten
 * times more spans fit under LLM_AUDIT_SPOOL_MAX_BYTES. Compression runs on libuv's thread pool.
 *
 * Written atomically: a temporary name, fsync, rename, fsync of the directory. A crash leaves either
 * a whole file under its final name or a temporary file that readers ignore and clean up.
 */
import { createHash } from 'node:crypto';
import { open, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gunzip, gzip, gzipSync } from 'node:zlib';
import type { tracing } from '@opentelemetry/sdk-node';
import { decodeBatch, encodeBatch, SpanCodecError } from './span-codec';

export const SPOOL_FORMAT = 'otel-llm-audit/spool';
export const SPOOL_VERSION = 1;
/** Final names end with this; anything else in a spool directory is not a batch. */
export const SPOOL_SUFFIX = '.spool';
/** Prefix of files being written; a leftover one is an interrupted write, never a batch. */
export const TEMP_PREFIX = '.tmp-';
export const FILE_MODE = 0o600;

const gzipAsync = promisify(gzip);
const gunzipAsync = promisify(gunzip);

export interface SpoolHeader {
  format: typeof SPOOL_FORMAT;
  version: number;
  createdAt: string;
  pid: number;
  spans: number;
  encoding: 'gzip' | 'identity';
  bodyBytes: number;
  bodySha256: string;
}

export type SpoolFileProblem = 'not-a-spool-file' | 'unknown-version' | 'truncated' | 'corrupt';

/** A file that cannot be read back as a batch; `problem` says why, for the diag message. */
export class SpoolFileError extends Error {
  constructor(
    readonly problem: SpoolFileProblem,
    message: string,
  ) {
    super(message);
  }
}

/** The bytes of a spool file for these spans (header + compressed body). */
export async function encodeSpoolFile(spans: readonly tracing.ReadableSpan[], now = new Date()): Promise<Buffer> {
  return withHeader(await gzipAsync(batchJson(spans), GZIP_OPTIONS), spans.length, now);
}

/**
 * The same bytes, computed on the calling thread: for the process's `exit` event, where nothing
 * asynchronous runs any more (see SpoolingSpanProcessor.spillOnExit).
 */
export function encodeSpoolFileSync(spans: readonly tracing.ReadableSpan[], now = new Date()): Buffer {
  return withHeader(gzipSync(batchJson(spans), GZIP_OPTIONS), spans.length, now);
}

const GZIP_OPTIONS = { level: 1 };

function batchJson(spans: readonly tracing.ReadableSpan[]): Buffer {
  return Buffer.from(JSON.stringify(encodeBatch(spans)), 'utf8');
}

function withHeader(body: Buffer, spans: number, now: Date): Buffer {
  const header: SpoolHeader = {
    format: SPOOL_FORMAT,
    version: SPOOL_VERSION,
    createdAt: now.toISOString(),
    pid: process.pid,
    spans,
    encoding: 'gzip',
    bodyBytes: body.length,
    bodySha256: createHash('sha256').update(body).digest('hex'),
  };
  return Buffer.concat([Buffer.from(JSON.stringify(header) + '\n', 'utf8'), body]);
}

/** Parses and checks a spool file's bytes; throws SpoolFileError when they are not a whole, known batch. */
export async function decodeSpoolFile(bytes: Buffer): Promise<{ header: SpoolHeader; spans: tracing.ReadableSpan[] }> {
  const newline = bytes.indexOf(0x0a);
  if (newline < 0) {
    throw new SpoolFileError(bytes.length === 0 ? 'truncated' : 'not-a-spool-file', bytes.length === 0 ? 'the file is empty' : 'no header line');
  }
  let header: SpoolHeader;
  try {
    header = JSON.parse(bytes.subarray(0, newline).toString('utf8')) as SpoolHeader;
  } catch {
    throw new SpoolFileError('not-a-spool-file', 'the header line is not JSON');
  }
  if (header?.format !== SPOOL_FORMAT) throw new SpoolFileError('not-a-spool-file', `the header does not say format ${SPOOL_FORMAT}`);
  if (header.version !== SPOOL_VERSION) {
    throw new SpoolFileError('unknown-version', `spool format version ${JSON.stringify(header.version)}; this version of otel-llm-audit reads version ${SPOOL_VERSION}`);
  }
  const body = bytes.subarray(newline + 1);
  if (body.length < header.bodyBytes) throw new SpoolFileError('truncated', `the body has ${body.length} of its ${header.bodyBytes} bytes`);
  if (body.length > header.bodyBytes) throw new SpoolFileError('corrupt', `the body has ${body.length - header.bodyBytes} bytes more than its header says`);
  if (createHash('sha256').update(body).digest('hex') !== header.bodySha256) throw new SpoolFileError('corrupt', 'the body does not match its SHA-256');
  let json: Buffer;
  if (header.encoding === 'gzip') json = await gunzipAsync(body);
  else if (header.encoding === 'identity') json = body;
  else throw new SpoolFileError('unknown-version', `unknown body encoding ${JSON.stringify(header.encoding)}`);
  try {
    const spans = decodeBatch(JSON.parse(json.toString('utf8')));
    if (spans.length !== header.spans) throw new SpoolFileError('corrupt', `the header announces ${header.spans} spans, the body holds ${spans.length}`);
    return { header, spans };
  } catch (error) {
    if (error instanceof SpoolFileError) throw error;
    // The checksum matched, so this is a file written wrong, not damaged on disk: still corrupt.
    throw new SpoolFileError('corrupt', error instanceof SpanCodecError ? `bad batch: ${error.message}` : `the body is not JSON: ${(error as Error).message}`);
  }
}

/** Reads and decodes one spool file (see decodeSpoolFile for the errors). */
export async function readSpoolFile(path: string): Promise<{ header: SpoolHeader; spans: tracing.ReadableSpan[] }> {
  return decodeSpoolFile(await readFile(path));
}

/**
 * Writes `bytes` as `dir/name` so that the name only ever designates the whole, durable file:
 * temporary name, fsync, rename, fsync of the directory (which makes the rename itself durable).
 */
export async function writeFileAtomic(dir: string, name: string, bytes: Buffer): Promise<void> {
  const temp = join(dir, TEMP_PREFIX + name);
  const handle = await open(temp, 'wx', FILE_MODE);
  try {
    await handle.writeFile(bytes);
    await handle.sync();
  } catch (error) {
    await handle.close().catch(() => undefined);
    await unlink(temp).catch(() => undefined);
    throw error;
  }
  await handle.close();
  await rename(temp, join(dir, name));
  await syncDir(dir);
}

/** fsync of a directory: makes creations, renames and deletions in it durable. */
export async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
