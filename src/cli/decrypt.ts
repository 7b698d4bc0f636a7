/**
 * `llm-audit decrypt <request_id>`: shows an authorised reviewer the encrypted content (system
 * instructions, input and output messages) of one audited call, read from its ledger record.
 *
 * The read is recorded first: an `audit.read` record (who: --actor, else the OS user; which record;
 * why: --reason, required) is appended to the same ledger before anything is printed, and when it
 * cannot be (the ledger is locked by a running writer, the PostgreSQL role may not write, a signed
 * ledger without its signing key) nothing is shown (audit-read.ts).
 *
 * Exit codes: 0 shown; 1 the envelope is altered or damaged (CONTENT_TAMPERED,
 * CONTENT_ENVELOPE_INVALID); 2 usage; 3 cannot be shown (no key, wrong key, data key shredded,
 * keystore missing, record not found, no content captured for that call).
 */
import { existsSync } from 'node:fs';
import {
  ContentError,
  createContentCipher,
  keystorePathFrom,
  loadContentMasterKey,
  oldKeyPathsFromEnv,
  parseEnvelope,
  type ContentPayload,
  type MasterKey,
} from '../audit/content';
import { LedgerError, isLedgerError, type LedgerErrorCode } from '../ledger/errors';
import { scanRecords } from '../ledger/query';
import type { LedgerRecord } from '../ledger/record';
import { ReadAudit } from './audit-read';
import { oneOf, parse, str, strs, type CliIo } from './io';
import { POSTGRES_OPTION, withSource } from './source';

export const DECRYPT_USAGE =
  'llm-audit decrypt <request_id> --reason TEXT [--actor NAME] [--ledger DIR | --postgres URL] [--signing-key FILE] [--key FILE]... [--keystore FILE] [--format text|json]';

/** Master keys and keystore from the flags, else the LLM_AUDIT_CONTENT_* variables. */
export function reviewerKeys(keyFlags: string[], keystoreFlag: string | undefined, io: CliIo): { keys: MasterKey[]; keystore: string } {
  const keys: MasterKey[] = [];
  let first: string | undefined;
  if (keyFlags.length > 0) {
    for (const path of keyFlags) keys.push(loadContentMasterKey(path));
    first = keyFlags[0];
  } else {
    const current = io.env.LLM_AUDIT_CONTENT_KEY?.trim();
    if (current) {
      keys.push(loadContentMasterKey(current, io.env.LLM_AUDIT_CONTENT_KEY_ID?.trim() || undefined));
      first = current;
    }
    for (const path of oldKeyPathsFromEnv(io.env)) {
      keys.push(loadContentMasterKey(path));
      first ??= path;
    }
  }
  if (keys.length === 0) {
    throw new ContentError('CONTENT_KEY_MISSING', 'no content master key: give --key FILE (repeat it for rotated keys) or set LLM_AUDIT_CONTENT_KEY');
  }
  const keystore = keystorePathFrom(keystoreFlag, io.env, first)!;
  return { keys, keystore };
}

export async function decryptCommand(argv: string[], io: CliIo): Promise<number> {
  const p = parse(
    argv,
    {
      ledger: { type: 'string' },
      key: { type: 'string', multiple: true },
      keystore: { type: 'string' },
      format: { type: 'string' },
      actor: { type: 'string' },
      reason: { type: 'string' },
      'signing-key': { type: 'string' },
      ...POSTGRES_OPTION,
    },
    DECRYPT_USAGE,
    1,
  );
  const requestId = p.positionals[0];
  if (requestId === undefined || requestId === '') throw new LedgerError('LEDGER_USAGE', `give the request id of the call\nusage: ${DECRYPT_USAGE}`);
  if (!str(p, 'reason')?.trim()) {
    throw new LedgerError('LEDGER_USAGE', `--reason TEXT is required: decrypt reveals content, and the ledger records who read it and why\nusage: ${DECRYPT_USAGE}`);
  }
  const format = oneOf(str(p, 'format'), ['text', 'json'] as const, '--format', 'text');
  const audit = await ReadAudit.prepare(p, io);
  if (audit.unavailable) throw unrecorded(audit.unavailable.code, audit.unavailable.why);
  // The record first: whether there is anything to decrypt does not depend on the keys, and a
  // reviewer asking about a record without content should hear that, not about a keystore.
  const hit = await withSource(p, io, async (source) => {
    for await (const hit of scanRecords(source)) {
      if (hit.record.request_id === requestId) return hit;
    }
    return undefined;
  });
  if (hit === undefined) throw new LedgerError('LEDGER_RECORD_NOT_FOUND', `no record with request id ${JSON.stringify(requestId)}`);
  const record = hit.record;
  const envelope = (record as LedgerRecord & { content?: unknown }).content;
  if (envelope === undefined || envelope === null) {
    throw new ContentError('CONTENT_NOT_CAPTURED', `record ${JSON.stringify(requestId)} has no encrypted content (content capture was off for that call)`);
  }

  const { keys, keystore } = reviewerKeys(strs(p, 'key'), str(p, 'keystore'), io);
  if (!existsSync(keystore)) {
    throw new ContentError('CONTENT_KEYSTORE_NOT_FOUND', `the content keystore ${keystore} does not exist (give --keystore FILE or set LLM_AUDIT_CONTENT_KEYSTORE)`);
  }
  // Open-only: no current key, so nothing is ever written to the keystore.
  const cipher = createContentCipher({ oldKeys: keys, keystorePath: keystore, refreshMs: 0 });
  const fields = parseEnvelope(envelope);
  const payload = cipher.open(envelope as string, { requestId, tenantId: record.tenant_id });
  // Opened in memory only: shown once the read is in the ledger.
  try {
    await audit.record({ command: 'decrypt', tenantId: record.tenant_id, details: { request_id: requestId, seq: hit.seq, kid: fields.kid, dek: fields.dek } });
  } catch (error) {
    throw unrecorded(isLedgerError(error) ? error.code : 'LEDGER_IO', (error as Error).message.split('\n')[0]!);
  }
  if (format === 'json') {
    const doc = {
      request_id: record.request_id,
      timestamp: record.timestamp,
      tenant_id: record.tenant_id,
      user_id: record.user_id,
      kid: fields.kid,
      dek: fields.dek,
      content: payload,
    };
    await io.out(JSON.stringify(doc, null, 2) + '\n');
  } else {
    await io.out(renderText(record, fields.kid, fields.dek, payload));
  }
  return 0;
}

function unrecorded(code: LedgerErrorCode, why: string): LedgerError {
  return new LedgerError(code, `decrypt shows content only once the read is recorded in the ledger (audit.read), and it cannot be: ${why}; nothing was shown`);
}

// --- text rendering --------------------------------------------------------------------------------

/**
 * Content is untrusted text: terminal control sequences (ESC, C0/C1 controls) and bidirectional
 * overrides could hide or disguise what a reviewer reads, so they are shown escaped (\u001b).
 */
function visible(text: string): string {
  return text.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'));
}

function indent(text: string, by = '    '): string {
  return visible(text)
    .split('\n')
    .map((line) => by + line)
    .join('\n');
}

function json(value: unknown): string {
  if (typeof value === 'string') return value;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

function renderPart(part: unknown): string {
  if (typeof part !== 'object' || part === null) return indent(`(${json(part)})`);
  const p = part as Record<string, unknown>;
  const id = typeof p.id === 'string' ? ` ${p.id}` : '';
  switch (p.type) {
    case 'text':
      return indent(String(p.content ?? ''));
    case 'reasoning':
      return indent(`[reasoning]${p.redacted === true ? ' (redacted by the provider)' : ''}\n${String(p.content ?? '')}`);
    case 'tool_call':
      return indent(`[tool call${id}] ${String(p.name ?? '')}(${p.arguments === undefined ? '' : json(p.arguments)})`);
    case 'tool_call_response':
      return indent(`[tool result${id}]${p.is_error === true ? ' (error)' : ''}\n${json(p.response)}`);
    case 'uri':
      return indent(`[${String(p.modality ?? 'file')} ${String(p.uri ?? '')}]`);
    case 'file':
      return indent(`[${String(p.modality ?? 'file')} file ${String(p.file_id ?? '')}${typeof p.filename === 'string' ? ` ${p.filename}` : ''}]`);
    case 'blob':
      return indent(`[${String(p.modality ?? 'binary')} ${String(p.mime_type ?? '')} inline, ${String(p.content ?? '').length} base64 characters]`);
    case 'blob_digest':
      return indent(`[${String(p.modality ?? 'binary')} ${String(p.mime_type ?? '')} inline, ${String(p.bytes)} bytes, sha256 ${String(p.sha256)}]`);
    default:
      return indent(`[${String(p.type)}] ${json(p)}`);
  }
}

function renderMessages(title: string, messages: unknown[] | undefined): string {
  if (messages === undefined) return '';
  let out = `\n== ${title} (${messages.length}) ==\n`;
  messages.forEach((message, i) => {
    const m = (typeof message === 'object' && message !== null ? message : {}) as Record<string, unknown>;
    const finish = typeof m.finish_reason === 'string' ? `  (finish: ${visible(m.finish_reason)})` : '';
    const name = typeof m.name === 'string' ? ` ${visible(m.name)}` : '';
    out += `[${i + 1}] ${visible(String(m.role ?? 'unknown'))}${name}${finish}\n`;
    for (const part of Array.isArray(m.parts) ? m.parts : [m]) out += renderPart(part) + '\n';
  });
  return out;
}

function renderText(record: LedgerRecord, kid: string, dek: string, payload: ContentPayload): string {
  const model = record.model?.response && record.model.response !== record.model.request ? `${record.model.request ?? '?'} (${record.model.response})` : (record.model?.request ?? '');
  let out = '';
  out += `request_id  ${record.request_id}\n`;
  out += `timestamp   ${record.timestamp}\n`;
  out += `tenant      ${record.tenant_id ?? '(none)'}\n`;
  out += `user        ${record.user_id ?? '(none)'}\n`;
  out += `call        ${record.provider ?? '?'} ${record.action ?? ''} ${model}\n`;
  out += `keys        master ${kid}, data key ${dek}\n`;
  if (payload.system_instructions !== undefined) {
    out += `\n== system instructions ==\n`;
    for (const part of payload.system_instructions) out += renderPart(part) + '\n';
  }
  out += renderMessages('input messages', payload.input_messages);
  out += renderMessages('output messages', payload.output_messages);
  // Header fields (ids, tenant) are data too.
  return visible(out);
}
