/**
 * Detection and redaction of personal data and secrets in text (issue 6). Pure functions: the
 * instrumentation decides where the text comes from (./messages.ts walks the SDKs' request shapes)
 * and what to do with the findings.
 *
 * Offsets are UTF-16 code unit indexes into the scanned string, `end` exclusive, as for
 * String.prototype.slice.
 */

import { BUILTIN_DETECTORS, type Detect, type Span } from './builtins';

export type BuiltinType = 'EMAIL' | 'PHONE' | 'SSN' | 'CARD' | 'IBAN' | 'IP' | 'SECRET';

export interface Finding {
  type: string;
  start: number;
  end: number;
}

/** A user-supplied detector. `type` names it in placeholders and counts (`[EMPLOYEE_ID]`). */
export interface CustomPattern {
  type: string;
  pattern: RegExp | string;
}

/** Sees each scanned text and the findings of the detectors; may return a new list (adding or removing findings), or nothing to keep the list. */
export type SanitizeHook = (text: string, findings: readonly Finding[]) => readonly Finding[] | void;

export interface SanitizerOptions {
  /** Built-in detectors to run; default all. */
  types?: readonly string[];
  /** Extra regex detectors, always run. */
  patterns?: readonly CustomPattern[];
  hook?: SanitizeHook;
}

export interface Sanitizer {
  /** Non-overlapping findings, sorted by start. */
  scan(text: string): Finding[];
  /** The text with each finding replaced by `[TYPE]`, and the findings (offsets into the input). The same string when nothing was found. */
  redact(text: string): { text: string; findings: Finding[] };
}

export type SanitizeMode = 'off' | 'detect' | 'redact';

/**
 * Overlap ties go to the earlier entry of this list: a secret over anything else, a card number
 * over a phone-shaped run of its digits, and so on. Custom types follow, in the order given.
 */
export const BUILTIN_TYPES: readonly BuiltinType[] = ['SECRET', 'CARD', 'IBAN', 'SSN', 'EMAIL', 'IP', 'PHONE'];

const TYPE_NAME = /^[A-Z][A-Z0-9_]*$/;
const HAS_DIGIT = /\d/;
// Detectors that can only match text containing a digit; a digit-free text skips them.
const NEEDS_DIGIT: ReadonlySet<string> = new Set(['CARD', 'IBAN', 'SSN', 'IP', 'PHONE']);

interface Detector {
  readonly type: string;
  readonly needsDigit: boolean;
  readonly detect: Detect;
}

export function createSanitizer(options: SanitizerOptions = {}): Sanitizer {
  const detectors: Detector[] = [];
  const priority = new Map<string, number>();

  const types = options.types ?? BUILTIN_TYPES;
  if (!Array.isArray(types)) throw new TypeError('sanitizer option "types" must be an array of detector names');
  for (const type of types) {
    if (!(BUILTIN_TYPES as readonly string[]).includes(type)) {
      throw new TypeError(`unknown sanitizer type ${JSON.stringify(type)}: expected one of ${BUILTIN_TYPES.join(', ')}`);
    }
  }
  // Built-ins run, and win ties, in BUILTIN_TYPES order whatever the order of `types`.
  for (const type of BUILTIN_TYPES) {
    priority.set(type, priority.size);
    if (types.includes(type)) detectors.push({ type, needsDigit: NEEDS_DIGIT.has(type), detect: BUILTIN_DETECTORS[type] });
  }

  const patterns = options.patterns ?? [];
  if (!Array.isArray(patterns)) throw new TypeError('sanitizer option "patterns" must be an array');
  patterns.forEach((custom, index) => {
    const { type, regex } = compileCustomPattern(custom, index);
    if (!priority.has(type)) priority.set(type, priority.size);
    detectors.push({ type, needsDigit: false, detect: customDetector(type, regex) });
  });

  const hook = options.hook;
  if (hook !== undefined && typeof hook !== 'function') throw new TypeError('sanitizer option "hook" must be a function');

  function scan(text: string): Finding[] {
    if (typeof text !== 'string' || text.length === 0) return [];
    // Detectors see the text normalised (full-width and other compatibility forms folded, zero-width
    // characters dropped), so `jane\u200b.doe@…` or full-width digits cannot slip past them; the
    // findings are then mapped back to offsets into the text itself, which is what redact rewrites.
    const normal = normalizeForDetection(text);
    const scanned = normal?.text ?? text;
    let found: Span[] = [];
    const hasDigit = HAS_DIGIT.test(scanned);
    for (const detector of detectors) {
      if (detector.needsDigit && !hasDigit) continue;
      detector.detect(scanned, found);
    }
    if (normal !== undefined) found = found.map((f) => ({ type: f.type, start: normal.startOf[f.start]!, end: normal.endOf[f.end - 1]! }));
    let findings = resolveOverlaps(found, priority);
    if (hook !== undefined) {
      // The hook gets its own frozen copies: whatever it does to them, our list stays as it was.
      const view = Object.freeze(findings.map((f) => Object.freeze({ type: f.type, start: f.start, end: f.end })));
      const replaced = hook(text, view);
      if (replaced !== undefined) findings = resolveOverlaps(checkHookFindings(replaced, text.length), priority);
    }
    return findings;
  }

  function redact(text: string): { text: string; findings: Finding[] } {
    const findings = scan(text);
    if (findings.length === 0) return { text, findings };
    let out = '';
    let copied = 0;
    for (const f of findings) {
      out += text.slice(copied, f.start) + '[' + f.type + ']';
      copied = f.end;
    }
    return { text: out + text.slice(copied), findings };
  }

  return { scan, redact };
}

// Characters that render as nothing and that a detector would see as a break: zero-width space,
// non-joiner and joiner, word joiner and the invisible operators, byte order mark / zero-width
// no-break space, soft hyphen, Mongolian vowel separator.
const INVISIBLE: ReadonlySet<number> = new Set([0x00ad, 0x180e, 0x200b, 0x200c, 0x200d, 0x2060, 0x2061, 0x2062, 0x2063, 0x2064, 0xfeff]);
const INVISIBLE_CHAR = /[\u00ad\u180e\u200b-\u200d\u2060-\u2064\ufeff]/;
// Anything that NFKC or INVISIBLE could change; pure ASCII (most prompts) is scanned as is.
const NOT_ASCII = /[^\x00-\x7f]/;
// NFKC of single code points, remembered: non-ASCII text repeats few distinct characters.
const foldCache = new Map<number, string>();
const FOLD_CACHE_LIMIT = 4096;

interface Normalized {
  text: string;
  /** For each UTF-16 unit of `text` (the arrays may be longer): the offset, in the original, of the character it came from. */
  startOf: Int32Array;
  /** For each UTF-16 unit of `text`: the offset, in the original, just after that character. */
  endOf: Int32Array;
}

/**
 * The text as the detectors should see it: each code point in its NFKC form (full-width `４` is
 * `4`, `＠` is `@`, mathematical `𝟏` is `1`), invisible characters dropped; undefined when that is
 * the text itself. Code point by code point, not NFKC of the whole text, so that every output unit
 * maps back to the one character it came from (composition across characters, such as a letter and
 * a combining accent, is not needed to find any of the detectors' shapes).
 */
export function normalizeForDetection(text: string): Normalized | undefined {
  if (!NOT_ASCII.test(text)) return undefined;
  // Most non-ASCII text (accented Latin, CJK without full-width forms) is already NFKC and has no
  // invisible character: one native pass tells, and it is then scanned as is.
  if (!INVISIBLE_CHAR.test(text) && text.normalize('NFKC') === text) return undefined;
  const pieces: string[] = [];
  let capacity = text.length + 16;
  let startOf = new Int32Array(capacity);
  let endOf = new Int32Array(capacity);
  let length = 0;
  for (let i = 0; i < text.length; ) {
    const code = text.codePointAt(i)!;
    const width = code > 0xffff ? 2 : 1;
    let folded: string;
    if (code < 0x80) folded = text[i]!;
    else if (INVISIBLE.has(code)) folded = '';
    else {
      let cached = foldCache.get(code);
      if (cached === undefined) {
        cached = String.fromCodePoint(code).normalize('NFKC');
        if (foldCache.size >= FOLD_CACHE_LIMIT) foldCache.clear();
        foldCache.set(code, cached);
      }
      folded = cached;
    }
    if (length + folded.length > capacity) {
      // An expansion (`㍻` is two characters, `ﷺ` eighteen): grow the maps.
      capacity = (length + folded.length) * 2;
      const grownStart = new Int32Array(capacity);
      const grownEnd = new Int32Array(capacity);
      grownStart.set(startOf.subarray(0, length));
      grownEnd.set(endOf.subarray(0, length));
      startOf = grownStart;
      endOf = grownEnd;
    }
    for (let k = 0; k < folded.length; k++) {
      startOf[length] = i;
      endOf[length] = i + width;
      length++;
    }
    pieces.push(folded);
    i += width;
  }
  return { text: pieces.join(''), startOf, endOf };
}

function compileCustomPattern(custom: CustomPattern, index: number): { type: string; regex: RegExp } {
  if (typeof custom !== 'object' || custom === null) throw new TypeError(`sanitizer pattern #${index} must be { type, pattern }`);
  const { type, pattern } = custom;
  if (typeof type !== 'string' || !TYPE_NAME.test(type)) {
    throw new TypeError(`sanitizer pattern #${index}: type must match [A-Z][A-Z0-9_]* (it becomes the placeholder [TYPE]), got ${JSON.stringify(type)}`);
  }
  if (pattern instanceof RegExp) {
    // Our own copy: `g` to walk all matches, no `y` (sticky would stop at the first gap), and a
    // lastIndex nobody else touches.
    const flags = pattern.flags.replace(/[gy]/g, '') + 'g';
    return { type, regex: new RegExp(pattern.source, flags) };
  }
  if (typeof pattern === 'string') {
    try {
      return { type, regex: new RegExp(pattern, 'g') };
    } catch (error) {
      throw new TypeError(`sanitizer pattern ${type}: invalid regular expression: ${(error as Error).message}`);
    }
  }
  throw new TypeError(`sanitizer pattern ${type}: pattern must be a RegExp or a string`);
}

function customDetector(type: string, regex: RegExp): Detect {
  const unicode = regex.unicode || regex.flags.includes('v');
  return (text, out) => {
    regex.lastIndex = 0;
    for (let m = regex.exec(text); m !== null; m = regex.exec(text)) {
      if (m[0].length === 0) {
        // An empty match finds nothing; step over it (a whole code point in unicode mode).
        const code = text.codePointAt(regex.lastIndex);
        regex.lastIndex += unicode && code !== undefined && code > 0xffff ? 2 : 1;
        continue;
      }
      out.push({ type, start: m.index, end: m.index + m[0].length });
    }
  };
}

function checkHookFindings(findings: unknown, length: number): Span[] {
  if (!Array.isArray(findings)) throw new TypeError('sanitizer hook must return an array of findings or nothing');
  return findings.map((f: unknown, i) => {
    const { type, start, end } = (f ?? {}) as Partial<Finding>;
    if (
      typeof type !== 'string' ||
      !TYPE_NAME.test(type) ||
      !Number.isInteger(start) ||
      !Number.isInteger(end) ||
      (start as number) < 0 ||
      (end as number) > length ||
      (start as number) >= (end as number)
    ) {
      throw new TypeError(`sanitizer hook returned an invalid finding at index ${i}: needs type [A-Z][A-Z0-9_]* and 0 <= start < end <= text length`);
    }
    return { type, start: start as number, end: end as number };
  });
}

/**
 * Non-overlapping findings sorted by start. Among overlapping ones the longest wins, then the
 * earliest, then the type listed first (BUILTIN_TYPES, then custom types). Identical duplicates
 * collapse into one.
 */
function resolveOverlaps(spans: Span[], priority: ReadonlyMap<string, number>): Finding[] {
  if (spans.length === 0) return [];
  spans.sort((a, b) => a.start - b.start || b.end - a.end);
  const out: Finding[] = [];
  // Clusters of transitively overlapping spans; most are a single span.
  let clusterStart = 0;
  let clusterEnd = spans[0]!.end;
  for (let i = 1; i <= spans.length; i++) {
    const span = spans[i];
    if (span !== undefined && span.start < clusterEnd) {
      if (span.end > clusterEnd) clusterEnd = span.end;
      continue;
    }
    if (i - clusterStart === 1) {
      const only = spans[clusterStart]!;
      out.push({ type: only.type, start: only.start, end: only.end });
    } else {
      for (const kept of pickInCluster(spans.slice(clusterStart, i), priority)) out.push(kept);
    }
    if (span !== undefined) {
      clusterStart = i;
      clusterEnd = span.end;
    }
  }
  return out;
}

function pickInCluster(cluster: Span[], priority: ReadonlyMap<string, number>): Finding[] {
  const rank = (type: string): number => priority.get(type) ?? Number.MAX_SAFE_INTEGER;
  const byPreference = cluster.slice().sort(
    (a, b) => b.end - b.start - (a.end - a.start) || a.start - b.start || rank(a.type) - rank(b.type) || (a.type < b.type ? -1 : a.type > b.type ? 1 : 0),
  );
  // Accepted spans, sorted by start; an overlap test needs only the neighbours of the insert point.
  const kept: Finding[] = [];
  for (const span of byPreference) {
    let lo = 0;
    let hi = kept.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (kept[mid]!.start < span.start) lo = mid + 1;
      else hi = mid;
    }
    const before = kept[lo - 1];
    const after = kept[lo];
    if (before !== undefined && before.end > span.start) continue;
    if (after !== undefined && after.start < span.end) continue;
    kept.splice(lo, 0, { type: span.type, start: span.start, end: span.end });
  }
  return kept;
}

const MODES: readonly SanitizeMode[] = ['off', 'detect', 'redact'];

/** `LLM_AUDIT_SANITIZE`: `off` (default, also when unset or empty), `detect` or `redact`, any case. Throws on anything else. */
export function sanitizeModeFromEnv(env: NodeJS.ProcessEnv): SanitizeMode {
  const raw = env['LLM_AUDIT_SANITIZE'];
  if (raw === undefined) return 'off';
  const value = raw.trim().toLowerCase();
  if (value === '') return 'off';
  if ((MODES as readonly string[]).includes(value)) return value as SanitizeMode;
  const shown = raw.length > 40 ? `${raw.slice(0, 40)}…` : raw;
  throw new Error(`LLM_AUDIT_SANITIZE must be one of off, detect, redact; got ${JSON.stringify(shown)}`);
}
