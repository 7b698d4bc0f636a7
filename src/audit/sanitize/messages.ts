/**
 * Walks the request params of each audited SDK call, scans the text the provider will read, and in
 * `redact` mode builds the params to send instead: copy-on-write, so the caller's object is never
 * mutated and unchanged branches are shared, not copied.
 *
 * What is scanned is decided per field by each provider's request walker
 * (src/instrumentations/<provider>/request.ts) from the SDK's request types: user-visible text,
 * tool call arguments and tool results. Binary and opaque fields are never touched (images, audio,
 * files, signed or encrypted reasoning). Anything of an unexpected shape is left alone and not
 * counted. This module is the walk they run: the scanning and copy-on-write rewriting.
 *
 * Locations name the field (`messages[1].content[0].text`), never its value.
 */

import type { Sanitizer } from './detectors';
import type { RequestWalker } from '../../core/types';

export interface SanitizeLocationFinding {
  type: string;
  count: number;
  location: string;
}

export interface SanitizeResult {
  /** The params to send: the same object when nothing changed or in detect mode, else a copy with redacted strings. */
  params: unknown;
  /** One entry per (location, type), in request order. */
  findings: SanitizeLocationFinding[];
  /** Sum of the counts. */
  total: number;
}

type Path = Array<string | number>;
type Obj = Record<string, unknown>;

/**
 * What a provider's RequestWalker (src/core/types.ts) scans the request with: each method keeps
 * the location (`path`) and, in redact mode, returns the rewritten value (copy-on-write).
 */
export interface TextWalk {
  readonly path: Path;
  /** True when what the walk returns is sent (redact mode); false when it only counts (detect). */
  readonly redact: boolean;
  /** One string of text the provider reads. */
  text(value: string): string;
  /** A JSON document in a string (tool call arguments). */
  jsonText(value: string): string;
  /** The string leaves of free-form JSON data (tool call arguments and results as objects). */
  json(value: unknown): unknown;
  array(items: readonly unknown[], fn: (item: unknown, index: number) => unknown): readonly unknown[];
  field<T extends Obj>(obj: T, key: string, fn: (value: unknown) => unknown): T;
  textField<T extends Obj>(obj: T, key: string): T;
  jsonField<T extends Obj>(obj: T, key: string): T;
}

// Deepest nesting walked inside free-form JSON (Anthropic tool_use.input, parsed tool arguments).
const MAX_DEPTH = 64;
const IDENTIFIER = /^[A-Za-z_$][\w$]{0,63}$/;

class Walk implements TextWalk {
  readonly findings: SanitizeLocationFinding[] = [];
  total = 0;
  readonly path: Path = [];
  private readonly byLocation = new Map<string, SanitizeLocationFinding>();

  constructor(
    readonly sanitizer: Sanitizer,
    readonly redact: boolean,
  ) {}

  /** Scans one string at the current path; returns the string to send. */
  text(value: string): string {
    if (value.length === 0) return value;
    if (!this.redact) {
      this.record(this.sanitizer.scan(value));
      return value;
    }
    const result = this.sanitizer.redact(value);
    this.record(result.findings);
    return result.text;
  }

  /**
   * A JSON document in a string (tool call arguments). Scanned as text; when redacting would break
   * the JSON (a finding spanning a quote or an escape), the parsed value's string leaves are
   * redacted instead and it is serialized again.
   */
  jsonText(value: string): string {
    if (value.length === 0) return value;
    if (!this.redact) return this.text(value);
    const { text: redacted, findings } = this.sanitizer.redact(value);
    if (findings.length === 0) return value;
    const parsed = isJson(redacted) ? undefined : parseJson(value);
    if (parsed !== undefined) {
      const leaves = new Walk(this.sanitizer, true);
      const rewritten = leaves.json(parsed.value, 0, new Map());
      for (const f of leaves.findings) this.add(f.type, f.count);
      return JSON.stringify(rewritten);
    }
    this.record(findings);
    return redacted;
  }

  /** String leaves of free-form JSON data; objects are copied on write. */
  json(value: unknown, depth = 0, seen: Map<object, unknown> = new Map()): unknown {
    if (typeof value === 'string') return this.text(value);
    if (typeof value !== 'object' || value === null || depth >= MAX_DEPTH) return value;
    // Shared subtrees are rewritten once; a cycle (impossible to send anyway) is left as it is.
    if (seen.has(value)) return seen.get(value);
    seen.set(value, value);
    let result: unknown = value;
    if (Array.isArray(value)) {
      result = this.array(value, (item) => this.json(item, depth + 1, seen));
    } else if (isPlainObject(value)) {
      let copy: Obj | undefined;
      for (const key of Object.keys(value)) {
        const item = value[key];
        this.path.push(IDENTIFIER.test(key) ? key : '*');
        const next = this.json(item, depth + 1, seen);
        this.path.pop();
        if (next !== item) {
          copy ??= { ...value };
          copy[key] = next;
        }
      }
      result = copy ?? value;
    }
    seen.set(value, result);
    return result;
  }

  /** Maps an array with its index on the path; the same array when no item changed. */
  array(items: readonly unknown[], fn: (item: unknown, index: number) => unknown): readonly unknown[] {
    let copy: unknown[] | undefined;
    for (let i = 0; i < items.length; i++) {
      const item = items[i];
      this.path.push(i);
      const next = fn(item, i);
      this.path.pop();
      if (next !== item) {
        copy ??= items.slice();
        copy[i] = next;
      }
    }
    return copy ?? items;
  }

  /** Rewrites `obj[key]` with fn when it is present, the path extended by key; the same object when unchanged. */
  field<T extends Obj>(obj: T, key: string, fn: (value: unknown) => unknown): T {
    if (!Object.prototype.hasOwnProperty.call(obj, key)) return obj;
    const value = obj[key];
    this.path.push(key);
    const next = fn(value);
    this.path.pop();
    return next === value ? obj : { ...obj, [key]: next };
  }

  /** `field` for a string-valued field: scanned as text, anything else left alone. */
  textField<T extends Obj>(obj: T, key: string): T {
    return this.field(obj, key, (v) => (typeof v === 'string' ? this.text(v) : v));
  }

  jsonField<T extends Obj>(obj: T, key: string): T {
    return this.field(obj, key, (v) => (typeof v === 'string' ? this.jsonText(v) : v));
  }

  private record(findings: readonly { type: string }[]): void {
    if (findings.length === 0) return;
    const counts = new Map<string, number>();
    for (const f of findings) counts.set(f.type, (counts.get(f.type) ?? 0) + 1);
    for (const [type, count] of counts) this.add(type, count);
  }

  private add(type: string, count: number): void {
    const location = formatPath(this.path);
    const key = `${location}\u0000${type}`;
    const existing = this.byLocation.get(key);
    if (existing !== undefined) {
      existing.count += count;
    } else {
      const entry = { type, count, location };
      this.byLocation.set(key, entry);
      this.findings.push(entry);
    }
    this.total += count;
  }
}

function formatPath(path: Path): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else if (segment === '*') out += '[*]';
    else out += out === '' ? segment : `.${segment}`;
  }
  return out;
}

function isObj(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isPlainObject(value: object): value is Obj {
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

function isJson(text: string): boolean {
  return parseJson(text) !== undefined;
}

function parseJson(text: string): { value: unknown } | undefined {
  try {
    return { value: JSON.parse(text) as unknown };
  } catch {
    return undefined;
  }
}

const NO_FINDINGS: Sanitizer = { scan: () => [], redact: (text) => ({ text, findings: [] }) };

/**
 * A walk that finds nothing and changes nothing: for a provider walker that also builds the
 * request's content, run only for that content (hashes, encrypted envelope).
 */
export function readingWalk(): TextWalk {
  return new Walk(NO_FINDINGS, false);
}

// --- Entry point -----------------------------------------------------------------------------------

/**
 * Scans the text of a request. In `detect` mode `params` is returned as is; in `redact` mode the
 * returned params are a copy with each finding replaced by `[TYPE]` (the same object when nothing
 * was found). The caller's object is never modified. Non-object params (and a walker of another
 * shape) are left untouched with no findings. `kind`: the provider's RequestWalker.
 */
export function sanitizeRequest(kind: RequestWalker, params: unknown, sanitizer: Sanitizer, mode: 'detect' | 'redact'): SanitizeResult {
  if (typeof kind?.sanitize !== 'function' || !isObj(params)) {
    return { params, findings: [], total: 0 };
  }
  const walk = new Walk(sanitizer, mode === 'redact');
  const out = kind.sanitize(walk, params);
  return { params: mode === 'redact' ? out : params, findings: walk.findings, total: walk.total };
}
