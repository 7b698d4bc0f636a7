/**
 * Secret shapes shared by the two places that look for credentials in text: `maskSecrets` (error
 * messages written onto spans, src/audit/redact.ts) and the SECRET detector of the sanitizer
 * (request content, ./detectors.ts). One table, so a new key format is added once.
 *
 * Every pattern starts with a fixed literal and is followed by a single character class (or classes
 * that cannot overlap), so the regex engine never backtracks more than a constant amount per
 * candidate start: the cost is linear in the input, also for adversarial megabyte-sized texts.
 * Private key blocks are found with indexOf, not a regex (see findPrivateKeyBlocks).
 */

/** One credential shape. */
export interface SecretPattern {
  readonly name: string;
  /**
   * Global regex whose match ends with the named group `value` (the secret itself). What precedes
   * it (a header name, `Bearer`, a key-kind prefix) is context that `mask` may keep visible.
   */
  readonly regex: RegExp;
  /** Replacement for String.prototype.replace in maskSecrets; `MASK` stands for the secret. */
  readonly mask: string;
  /**
   * Whether the text before `value` belongs to the secret (an `sk-proj-` prefix, `AKIA`) or is only
   * its context (`Bearer `, `x-api-key: `). The sanitizer replaces the secret, context excluded.
   */
  readonly contextIsSecret: boolean;
  /**
   * Extra check the sanitizer applies to `value`. Error messages are masked aggressively (a false
   * positive costs nothing there); prompts are prose, where `bearer of bad news` or an
   * `sk-learn-style` word must not become `[SECRET]`.
   */
  readonly plausible?: (value: string) => boolean;
}

/** What maskSecrets writes in place of a secret. */
export const MASK = '[REDACTED]';

const hasDigit = (value: string): boolean => /\d/.test(value);
const hasLetter = (value: string): boolean => /[A-Za-z]/.test(value);

export const SECRET_PATTERNS: readonly SecretPattern[] = [
  {
    // OpenAI (sk-..., sk-proj-..., sk-svcacct-..., sk-admin-...) and Anthropic (sk-ant-api03-...)
    // keys. The lookbehind keeps "task-list-…" style words out; the kind prefix stays visible in
    // masked error messages for debugging.
    name: 'api-key',
    regex: /(?<![A-Za-z0-9])(?<kind>sk-(?:ant-|proj-|svcacct-|admin-)?)(?<value>[A-Za-z0-9_-]{20,})/g,
    mask: `$<kind>${MASK}`,
    contextIsSecret: true,
    // Generated keys are base62 with digits; a hyphenated phrase after "sk-" has none.
    plausible: (value) => hasDigit(value) && hasLetter(value),
  },
  {
    // RFC 6750 b64token characters.
    name: 'bearer',
    regex: /\b(?<scheme>Bearer)\s+(?<value>[A-Za-z0-9._~+/-]+=*)/gi,
    mask: `$<scheme> ${MASK}`,
    contextIsSecret: false,
    // Tokens are long and random; "bearer of bad news" or "bearer token" is prose.
    plausible: (value) => value.length >= 16 && hasDigit(value) && hasLetter(value),
  },
  {
    // `x-api-key: v`, `"x-api-key":"v"`, `api-key=v` (Azure), `x-goog-api-key: v`.
    name: 'api-key-header',
    regex: /\b(?<header>(?:x-(?:goog-)?)?api-key)(?<sep>"?\s*[:=]\s*"?)(?<value>[^\s"',;}]+)/gi,
    mask: `$<header>$<sep>${MASK}`,
    contextIsSecret: false,
    plausible: (value) => value.length >= 8,
  },
  {
    // AWS access key ids: long-term (AKIA) and temporary (ASIA).
    name: 'aws-access-key-id',
    regex: /\b(?<kind>AKIA|ASIA)(?<value>[A-Z0-9]{16})\b/g,
    mask: `$<kind>${MASK}`,
    contextIsSecret: true,
  },
  {
    // Its secret has no recognizable shape of its own; it is only findable next to its name.
    name: 'aws-secret-access-key',
    regex: /\b(?<name>aws_?secret_?access_?key)(?<sep>"?\s*[:=]\s*"?)(?<value>[A-Za-z0-9/+=]{40})/gi,
    mask: `$<name>$<sep>${MASK}`,
    contextIsSecret: false,
  },
];

/**
 * Shapes the sanitizer looks for in request content but maskSecrets does not (yet) apply to error
 * messages, whose behaviour is kept as it was.
 */
export const CONTENT_SECRET_PATTERNS: readonly SecretPattern[] = [
  {
    // A JSON Web Token on its own (after `Bearer` the bearer pattern already covers it): base64url
    // header and payload, both JSON objects (`eyJ` is `{"`), and a signature.
    name: 'jwt',
    regex: /(?<![A-Za-z0-9_-])(?<value>eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,})/g,
    mask: MASK,
    contextIsSecret: true,
  },
];

const BEGIN_MARKER = '-----BEGIN ';
const END_MARKER = '-----END ';
const DASHES = '-----';
// The END line's label is as long as the BEGIN line's; no real label comes near this.
const MAX_END_LABEL = 64;

/** A PEM private key block, as offsets into the text (UTF-16 code units, ends exclusive). */
export interface PrivateKeyBlock {
  /** The label between `-----BEGIN ` and `-----`, e.g. `RSA PRIVATE KEY`. */
  readonly label: string;
  /** Start of `-----BEGIN `. */
  readonly start: number;
  /** End of the BEGIN line's closing dashes: where the key material starts. */
  readonly bodyStart: number;
  /** Start of `-----END `, or the text's length when the block is truncated (no END marker). */
  readonly endMarker: number;
  /** End of the END line's closing dashes (or of `-----END ` when they are missing); the text's length when truncated. */
  readonly end: number;
}

/**
 * PEM private key blocks (RSA/EC/OPENSSH/ENCRYPTED "… PRIVATE KEY" and PGP "PRIVATE KEY BLOCK"
 * labels), found with indexOf rather than a `BEGIN…END` regex: a lazy `[\s\S]*?` up to a matching
 * END rescans the rest of the input for every BEGIN without an END, which is quadratic. A block
 * without its END (a truncated text) runs to the end of the text. Certificates and public keys are
 * not returned.
 */
export function findPrivateKeyBlocks(text: string): PrivateKeyBlock[] {
  const blocks: PrivateKeyBlock[] = [];
  let begin = text.indexOf(BEGIN_MARKER);
  while (begin !== -1) {
    const labelStart = begin + BEGIN_MARKER.length;
    const labelEnd = text.indexOf(DASHES, labelStart);
    if (labelEnd === -1) break;
    const label = text.slice(labelStart, labelEnd);
    if (!label.includes('PRIVATE KEY') || label.includes('\n')) {
      begin = text.indexOf(BEGIN_MARKER, labelEnd);
      continue;
    }
    const bodyStart = labelEnd + DASHES.length;
    const endMarker = text.indexOf(END_MARKER, bodyStart);
    if (endMarker === -1) {
      blocks.push({ label, start: begin, bodyStart, endMarker: text.length, end: text.length });
      break;
    }
    const endLabelStart = endMarker + END_MARKER.length;
    // Bounded look for the END line's closing dashes: never a scan of the rest of the text.
    const tail = text.slice(endLabelStart, endLabelStart + MAX_END_LABEL + DASHES.length);
    const closing = tail.indexOf(DASHES);
    const end = closing !== -1 && !tail.slice(0, closing).includes('\n') ? endLabelStart + closing + DASHES.length : endLabelStart;
    blocks.push({ label, start: begin, bodyStart, endMarker, end });
    // The next search starts at this block's END line (as maskSecrets always did).
    begin = text.indexOf(BEGIN_MARKER, endMarker);
  }
  return blocks;
}
