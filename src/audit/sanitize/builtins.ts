/**
 * The built-in detectors: a precompiled global regex finds candidates, a check in code (Luhn,
 * mod-97, octet ranges, area/group/serial rules, grouping) confirms them.
 *
 * Linear time. Every regex here is written so that a failed candidate costs a bounded amount of
 * work and a position inside a run of candidate characters is not retried: each starts with a
 * literal or with a lookbehind that rejects a start in the middle of a run (one character test),
 * its repetitions are bounded or separated by a mandatory delimiter that cannot be split two ways,
 * and no two adjacent unbounded quantifiers share characters. E-mail addresses are searched from
 * each `@` instead. test/audit/sanitize/adversarial.test.ts feeds each one megabyte-sized worst
 * cases.
 *
 * State. The regexes are module constants with the `g` (or `y`) flag; each detector sets
 * `lastIndex` before use and runs to completion synchronously, so no two scans share them.
 */

import { CONTENT_SECRET_PATTERNS, findPrivateKeyBlocks, SECRET_PATTERNS, type SecretPattern } from './secrets';

export interface Span {
  type: string;
  start: number;
  end: number;
}

export type Detect = (text: string, out: Span[]) => void;

// --- EMAIL ----------------------------------------------------------------------------------------
// Local part: up to 64 characters of the common unquoted set (apostrophe included: O'Brien),
// starting with a letter or digit and not in the middle of a longer run of such characters.
// Domain: dot-separated LDH labels (1–63 characters, no leading or trailing hyphen), then an
// alphabetic TLD. The labels are delimited by mandatory dots, so there is one way to split them.
// The scan starts from each `@` (indexOf, fast) rather than trying every position of the text,
// and applies this sticky regex at the few candidate starts before it.
const EMAIL_AT = /[A-Za-z0-9][\w.%+'-]{0,63}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![A-Za-z0-9-])/y;
const MAX_LOCAL_PART = 64;
// `logo@2x.png`, `icon@3x.webp`: asset names, not addresses. None of these is a delegated TLD.
const FILE_EXTENSIONS: ReadonlySet<string> = new Set([
  'png', 'jpg', 'jpeg', 'gif', 'svg', 'webp', 'avif', 'bmp', 'ico', 'tif', 'tiff', 'heic',
  'css', 'scss', 'less', 'js', 'mjs', 'cjs', 'jsx', 'ts', 'tsx', 'json', 'yaml', 'yml', 'toml',
  'lock', 'txt', 'csv', 'html', 'htm', 'xml', 'pdf', 'map', 'wasm', 'woff', 'woff2', 'ttf',
]);

const detectEmail: Detect = (text, out) => {
  let at = text.indexOf('@');
  while (at !== -1) {
    let resume = at + 1;
    let first = at;
    while (first > 0 && at - first < MAX_LOCAL_PART && isLocalPartChar(text.charCodeAt(first - 1))) first--;
    // The leftmost start that is not inside a longer run (an apostrophe may precede it: 'x@y.com').
    // Every start from `first` on leaves a local part short enough, so if the domain does not match
    // from this start it matches from none: one attempt per `@`.
    let start = first;
    while (start < at && (!isAlnum(text.charCodeAt(start)) || (start > 0 && isLocalPartGuard(text.charCodeAt(start - 1))))) start++;
    if (start < at) {
      EMAIL_AT.lastIndex = start;
      const m = EMAIL_AT.exec(text);
      if (m !== null) {
        if (plausibleEmail(m[0])) out.push({ type: 'EMAIL', start, end: start + m[0].length });
        resume = start + m[0].length;
      }
    }
    at = text.indexOf('@', resume);
  }
};

function plausibleEmail(value: string): boolean {
  const at = value.indexOf('@');
  const tld = value.slice(value.lastIndexOf('.') + 1).toLowerCase();
  if (FILE_EXTENSIONS.has(tld)) return false;
  if (value.length - at - 1 > 253) return false;
  // `john..doe@` and `john.@` are not addresses.
  const local = value.slice(0, at);
  return !(local.endsWith('.') || local.includes('..'));
}

function isAlnum(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
}

/** Characters that may not precede a local part: `[\w.%+-]`. */
function isLocalPartGuard(c: number): boolean {
  return isAlnum(c) || c === 0x5f || c === 0x2e || c === 0x25 || c === 0x2b || c === 0x2d;
}

/** Local part characters: the guard set and the apostrophe. */
function isLocalPartChar(c: number): boolean {
  return isLocalPartGuard(c) || c === 0x27;
}

// --- PHONE ----------------------------------------------------------------------------------------
// Three shapes, each needing visible phone structure (a leading +, parentheses, or separated digit
// groups): a bare run of digits is an order number, an id or an amount far more often than a phone.
//  - International: `+` country code and digits, groups separated by one space, dot or hyphen, an
//    optional parenthesized group (`+1 (415) 555-0132`, `+44 (0)20 7946 0958`). 8–15 digits.
//  - NANP: `(415) 555-0132`, `415-555-0132`, `415.555.0132`, `1-800-555-0199`; area code and exchange
//    start with 2–9.
//  - European national: trunk `0` then groups (`020 7946 0958`, `030/901820`, `06 12 34 56 78`,
//    `0151 2345 6789`, `(030) 901820`). 9–13 digits.
// Groups are separated by a mandatory delimiter, so a digit run is matched one way only.
const PHONE_END = String.raw`(?![\w+/@-]|[.,:]\d)`;
const PHONE_INTL = new RegExp(
  String.raw`(?<![\w+])\+[1-9]\d{0,14}(?:[ .-]?\(\d{1,4}\)[ .-]?\d{1,12})?(?:[ .-]\d{1,12}){0,6}` + PHONE_END,
  'g',
);
const PHONE_NANP = new RegExp(
  String.raw`(?<![\w+./#$€£-])(?<!\d[ ,])(?:1[ .-]?)?(?:\([2-9]\d\d\)[ .-]?|[2-9]\d\d[ .-])[2-9]\d\d[ .-]\d{4}` + PHONE_END,
  'g',
);
const PHONE_NATIONAL = new RegExp(
  String.raw`(?<![\w+./#$€£-])(?<!\d[ ,])(?:\(0[1-9]\d{0,4}\)|0[1-9]\d{0,4})(?:[ ./-]\d{2,8}){1,4}` + PHONE_END,
  'g',
);

const detectPhone: Detect = (text, out) => {
  PHONE_INTL.lastIndex = 0;
  for (let m = PHONE_INTL.exec(text); m !== null; m = PHONE_INTL.exec(text)) {
    if (plausibleInternational(m[0])) out.push({ type: 'PHONE', start: m.index, end: m.index + m[0].length });
  }
  PHONE_NANP.lastIndex = 0;
  for (let m = PHONE_NANP.exec(text); m !== null; m = PHONE_NANP.exec(text)) {
    if (plausibleNanp(m[0])) out.push({ type: 'PHONE', start: m.index, end: m.index + m[0].length });
  }
  PHONE_NATIONAL.lastIndex = 0;
  for (let m = PHONE_NATIONAL.exec(text); m !== null; m = PHONE_NATIONAL.exec(text)) {
    if (plausibleNational(m[0])) out.push({ type: 'PHONE', start: m.index, end: m.index + m[0].length });
  }
};

function countDigits(value: string): number {
  let n = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c >= 0x30 && c <= 0x39) n++;
  }
  return n;
}

function separators(value: string): string {
  return value.replace(/[\d()]/g, '');
}

function plausibleInternational(value: string): boolean {
  const digits = countDigits(value);
  // A `(0)` trunk digit is written but not dialled.
  const max = value.includes('(0)') ? 16 : 15;
  // Unseparated (`+4915112345678`), a short run is more likely `+20240615` build metadata.
  const min = /^\+\d+$/.test(value) ? 10 : 8;
  if (digits < min || digits > max) return false;
  // `+12345678.90` is an amount; dotted numbers are phones only when dots separate every group.
  const seps = separators(value);
  if (seps.includes('.') && (seps.length < 2 || /[^.]/.test(seps))) return false;
  return true;
}

function plausibleNanp(value: string): boolean {
  const seps = separators(value).replace(/ /g, '');
  // `415-555.0132` mixes styles that people do not mix; `(415) 555-0132` keeps a space and a hyphen.
  return !(seps.includes('.') && seps.includes('-'));
}

// DD-MM-YYYY / DD.MM.YYYY and that shape with a suffix (`01-02-2024-0001`).
const DATE_PREFIX = /^(?:0[1-9]|[12]\d|3[01])[./-](?:0[1-9]|1[0-2])[./-](?:19|20)\d\d(?!\d)/;

function plausibleNational(value: string): boolean {
  const digits = countDigits(value);
  if (digits < 9 || digits > 13) return false;
  if (DATE_PREFIX.test(value)) return false;
  const groups = value.split(/[ ./-]/);
  const seps = separators(value);
  // One style of separator, except a slash after the area code (`030/901820 55`) and a hyphen
  // before an extension (`089 1234567-10`).
  let rest = seps[0] === '/' ? seps.slice(1) : seps;
  if (rest.length > 1 && rest.endsWith('-') && groups[groups.length - 1]!.length <= 4) rest = rest.slice(0, -1);
  for (let i = 0; i < rest.length; i++) if (rest[i] === '/' || rest[i] !== rest[0]) return false;
  // Dots only in the French style of two-digit pairs: `01.42.68.53.00`.
  if (seps.includes('.') && !groups.every((g) => g.length === 2)) return false;
  return true;
}

// --- SSN ------------------------------------------------------------------------------------------
// `123-45-6789` or `123 45 6789` (one separator style). Area not 000, 666 or 9xx; group not 00;
// serial not 0000. Nine bare digits only right after "SSN" / "social security number".
const SSN = /(?<![\w.+/$#-])(?<!\d[ ,])(?!000|666|9)\d{3}(?<sep>[- ])(?!00)\d{2}\k<sep>(?!0000)\d{4}(?![\w/-]|[.,]\d|\k<sep>\d)/g;
// Keyword first: a literal start is cheap to search for; the finding is the `value` group only.
const SSN_BARE =
  /\b(?:ssn|ss#|social security(?: number| no\.?| #)?)[ \t]{0,3}(?:is|:|#|=|-)?[ \t]{0,3}(?<value>(?!000|666|9)\d{3}(?!00)\d{2}(?!0000)\d{4})(?!\w)/gi;

const detectSsn: Detect = (text, out) => {
  SSN.lastIndex = 0;
  for (let m = SSN.exec(text); m !== null; m = SSN.exec(text)) out.push({ type: 'SSN', start: m.index, end: m.index + m[0].length });
  SSN_BARE.lastIndex = 0;
  for (let m = SSN_BARE.exec(text); m !== null; m = SSN_BARE.exec(text)) {
    const end = m.index + m[0].length;
    out.push({ type: 'SSN', start: end - m.groups!['value']!.length, end });
  }
};

// --- CARD -----------------------------------------------------------------------------------------
// 13–19 digits, optionally grouped by single spaces or hyphens. Confirmed by: one separator style,
// a card grouping (fours, or Amex/Diners 4-6-5 / 4-6-4), an issuer prefix with its lengths, Luhn.
const CARD = /(?<![\w+./$#-])(?<!\d,)\d(?:[ -]?\d){12,18}(?![\w]|[.,/-]?\d)/g;

const detectCard: Detect = (text, out) => {
  CARD.lastIndex = 0;
  for (let m = CARD.exec(text); m !== null; m = CARD.exec(text)) {
    const length = cardLength(m[0]);
    if (length > 0) out.push({ type: 'CARD', start: m.index, end: m.index + length });
  }
};

/**
 * The length of the card number at the start of a candidate, or 0. A grouped candidate that fails
 * may be a card followed by another number (`4111 1111 1111 1111 123`): its prefixes that end at a
 * group boundary are tried, longest first.
 */
function cardLength(candidate: string): number {
  // Every accepted grouping starts with four digits; other candidates (`1 2 3 4 …`) end here.
  const firstSeparator = candidate.search(/[ -]/);
  if (firstSeparator !== -1 && firstSeparator !== 4) return 0;
  let value = candidate;
  for (;;) {
    if (plausibleCardGrouping(value)) {
      const digits = value.replace(/[ -]/g, '');
      if (knownIssuer(digits) && luhn(digits)) return value.length;
    }
    const cut = Math.max(value.lastIndexOf(' '), value.lastIndexOf('-'));
    if (cut === -1) return 0;
    value = value.slice(0, cut);
    if (countDigits(value) < 13) return 0;
  }
}

function plausibleCardGrouping(value: string): boolean {
  const hasSpace = value.includes(' ');
  const hasHyphen = value.includes('-');
  if (!hasSpace && !hasHyphen) return true;
  if (hasSpace && hasHyphen) return false;
  const groups = value.split(hasSpace ? ' ' : '-').map((g) => g.length);
  if (groups.length === 3 && groups[0] === 4 && groups[1] === 6 && (groups[2] === 5 || groups[2] === 4)) return true;
  for (let i = 0; i < groups.length - 1; i++) if (groups[i] !== 4) return false;
  return groups[groups.length - 1]! <= 4;
}

const MAESTRO_PREFIXES: ReadonlySet<number> = new Set([5018, 5020, 5038, 5893, 6304, 6759, 6761, 6762, 6763]);

/** Issuer identification number ranges of the major networks, with the lengths they issue. */
export function knownIssuer(digits: string): boolean {
  const n = digits.length;
  const p2 = Number(digits.slice(0, 2));
  const p3 = Number(digits.slice(0, 3));
  const p4 = Number(digits.slice(0, 4));
  const p6 = Number(digits.slice(0, 6));
  if (digits[0] === '4') return n === 13 || n === 16 || n === 19; // Visa
  if (p2 >= 51 && p2 <= 55) return n === 16; // Mastercard
  if (p4 >= 2221 && p4 <= 2720) return n === 16; // Mastercard 2-series
  if (p4 >= 2200 && p4 <= 2204) return n >= 16 && n <= 19; // Mir
  if (p2 === 34 || p2 === 37) return n === 15; // American Express
  if (p4 === 6011 || (p3 >= 644 && p3 <= 649) || p2 === 65) return n >= 16 && n <= 19; // Discover
  if (p6 >= 622126 && p6 <= 622925) return n >= 16 && n <= 19; // Discover / UnionPay co-branded
  if (p2 === 62) return n >= 16 && n <= 19; // UnionPay
  if (p4 >= 3528 && p4 <= 3589) return n >= 16 && n <= 19; // JCB
  if ((p3 >= 300 && p3 <= 305) || p4 === 3095 || p2 === 36 || p2 === 38 || p2 === 39) return n >= 14 && n <= 19; // Diners Club
  if (MAESTRO_PREFIXES.has(p4)) return n >= 13 && n <= 19; // Maestro
  return false;
}

/** The Luhn (mod 10) check digit test. */
export function luhn(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 0x30;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}

// --- IBAN -----------------------------------------------------------------------------------------
// Country code, two check digits, then the BBAN, electronic (`DE89370400440532013000`) or in print
// form (groups of four separated by single spaces). The regex takes the longest candidate; the
// country's length then says where the IBAN ends, and ISO 7064 mod 97-10 confirms it.
const IBAN = /(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}(?: ?[A-Za-z0-9]){11,30}(?![A-Za-z0-9])/g;

/** IBAN length per country (ISO 13616 registry) for the countries that issue most of them. */
export const IBAN_LENGTHS: Readonly<Record<string, number>> = {
  AD: 24, AE: 23, AL: 28, AT: 20, AZ: 28, BA: 20, BE: 16, BG: 22, BH: 22, BR: 29, BY: 28, CH: 21,
  CR: 22, CY: 28, CZ: 24, DE: 22, DK: 18, DO: 28, EE: 20, EG: 29, ES: 24, FI: 18, FO: 18, FR: 27,
  GB: 22, GE: 22, GI: 23, GL: 18, GR: 27, GT: 28, HR: 21, HU: 28, IE: 22, IL: 23, IQ: 23, IS: 26,
  IT: 27, JO: 30, KW: 30, KZ: 20, LB: 28, LC: 32, LI: 21, LT: 20, LU: 20, LV: 21, MC: 27, MD: 24,
  ME: 22, MK: 19, MR: 27, MT: 31, MU: 30, NL: 18, NO: 15, PK: 24, PL: 28, PS: 29, PT: 25, QA: 29,
  RO: 24, RS: 22, SA: 24, SC: 31, SE: 24, SI: 19, SK: 24, SM: 27, TL: 23, TN: 24, TR: 26, UA: 29,
  VA: 22, VG: 24, XK: 20,
};

const detectIban: Detect = (text, out) => {
  IBAN.lastIndex = 0;
  for (let m = IBAN.exec(text); m !== null; m = IBAN.exec(text)) {
    const end = ibanEnd(m[0]);
    if (end === -1) continue;
    out.push({ type: 'IBAN', start: m.index, end: m.index + end });
    // The candidate may have run on into the following words; resume right after the IBAN.
    IBAN.lastIndex = m.index + end;
  }
};

/** Where the IBAN at the start of `candidate` ends (exclusive), or -1 when it is not a valid IBAN. */
function ibanEnd(candidate: string): number {
  const country = candidate.slice(0, 2).toUpperCase();
  const length = IBAN_LENGTHS[country];
  if (length === undefined) return -1;
  const check = Number(candidate.slice(2, 4));
  if (check < 2 || check > 98) return -1;
  let compact = '';
  let end = 0;
  let groupLength = 0;
  let spaced = false;
  for (let i = 0; i < candidate.length && compact.length < length; i++) {
    const c = candidate[i]!;
    if (c === ' ') {
      // Print form: every group but the last has four characters.
      if (groupLength !== 4) return -1;
      spaced = true;
      groupLength = 0;
      continue;
    }
    if (spaced && groupLength === 4) return -1;
    compact += c.toUpperCase();
    groupLength++;
    end = i + 1;
  }
  if (compact.length < length) return -1;
  // The IBAN must end at a word boundary: the candidate ends there, or a space follows.
  if (end < candidate.length && candidate[end] !== ' ') return -1;
  return mod97(compact) === 1 ? end : -1;
}

/** ISO 7064 mod 97-10 over an IBAN: the first four characters moved to the end, letters as 10–35. */
export function mod97(iban: string): number {
  const rearranged = iban.slice(4) + iban.slice(0, 4);
  let remainder = 0;
  for (let i = 0; i < rearranged.length; i++) {
    const c = rearranged.charCodeAt(i);
    if (c >= 0x30 && c <= 0x39) {
      remainder = (remainder * 10 + (c - 0x30)) % 97;
    } else if (c >= 0x41 && c <= 0x5a) {
      remainder = (remainder * 100 + (c - 0x41 + 10)) % 97;
    } else {
      return -1;
    }
  }
  return remainder;
}

// --- IP -------------------------------------------------------------------------------------------
// IPv4: four decimal octets 0–255 without leading zeros. Not after a letter, a dot or a `v`
// (`v1.2.3.4` is a version), not followed by another `.digit` (a longer dotted number).
const OCTET = String.raw`(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)`;
const IPV4 = new RegExp(String.raw`(?<![\w.:-])(?:${OCTET}\.){3}${OCTET}(?![\w-]|\.\d)`, 'g');
// IPv6 candidates: a run of hex digits, colons and dots with a colon among its first five
// characters, then parsed in code (group counts, one `::`, an embedded IPv4 tail).
const IPV6 = /(?<![\w:.])(?=[0-9A-Fa-f]{0,4}:)[0-9A-Fa-f:.]{2,45}(?![\w:])/g;

const detectIp: Detect = (text, out) => {
  IPV4.lastIndex = 0;
  for (let m = IPV4.exec(text); m !== null; m = IPV4.exec(text)) {
    if (precededByVersionWord(text, m.index)) continue;
    out.push({ type: 'IP', start: m.index, end: m.index + m[0].length });
  }
  if (!text.includes(':')) return;
  IPV6.lastIndex = 0;
  for (let m = IPV6.exec(text); m !== null; m = IPV6.exec(text)) {
    let value = m[0];
    while (value.endsWith('.')) value = value.slice(0, -1); // a sentence's full stop
    if (validIpv6(value)) out.push({ type: 'IP', start: m.index, end: m.index + value.length });
  }
};

// Words after which four small dotted numbers are a version or a section, not an address.
const VERSION_WORD = /(?<![A-Za-z])(?:version|ver\.?|release|build|v|section|sec\.|chapter|§)\s?$/i;

function precededByVersionWord(text: string, index: number): boolean {
  return VERSION_WORD.test(text.slice(Math.max(0, index - 10), index));
}

const HEX_GROUP = /^[0-9A-Fa-f]{1,4}$/;
const IPV4_WHOLE = new RegExp(String.raw`^(?:${OCTET}\.){3}${OCTET}$`);

/** RFC 4291 text forms: eight groups, or fewer around one `::`, optionally ending in dotted IPv4. */
export function validIpv6(value: string): boolean {
  if (value === '::1') return true;
  // Hex words and colons without a decimal digit are more likely code (`dead::beef`) than addresses.
  if (!/\d/.test(value)) return false;
  const halves = value.split('::');
  if (halves.length > 2) return false;
  const groups: string[] = [];
  for (const half of halves) {
    if (half === '') continue;
    groups.push(...half.split(':'));
  }
  if (groups.length === 0) return false;
  let count = 0;
  for (let i = 0; i < groups.length; i++) {
    const group = groups[i]!;
    if (HEX_GROUP.test(group)) count += 1;
    else if (i === groups.length - 1 && IPV4_WHOLE.test(group)) count += 2;
    else return false;
  }
  if (halves.length === 2) return count <= 7 && count >= 2;
  return count === 8;
}

// --- SECRET ---------------------------------------------------------------------------------------
const detectSecret: Detect = (text, out) => {
  for (const block of findPrivateKeyBlocks(text)) out.push({ type: 'SECRET', start: block.start, end: block.end });
  for (const pattern of SECRET_PATTERNS) detectSecretPattern(pattern, text, out);
  for (const pattern of CONTENT_SECRET_PATTERNS) detectSecretPattern(pattern, text, out);
};

function detectSecretPattern(pattern: SecretPattern, text: string, out: Span[]): void {
  const regex = pattern.regex;
  regex.lastIndex = 0;
  for (let m = regex.exec(text); m !== null; m = regex.exec(text)) {
    const value = m.groups!['value']!;
    if (pattern.plausible !== undefined && !pattern.plausible(value)) continue;
    const end = m.index + m[0].length;
    out.push({ type: 'SECRET', start: pattern.contextIsSecret ? m.index : end - value.length, end });
  }
}

export const BUILTIN_DETECTORS = {
  SECRET: detectSecret,
  CARD: detectCard,
  IBAN: detectIban,
  SSN: detectSsn,
  EMAIL: detectEmail,
  IP: detectIp,
  PHONE: detectPhone,
} as const;
