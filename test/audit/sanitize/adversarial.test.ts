import { describe, it, expect } from 'vitest';
import { createSanitizer } from '../../../src/audit/sanitize/detectors';
import { sanitizeRequest } from '../../../src/audit/sanitize/messages';
import { chatRequest } from '../../../src/instrumentations/openai/request';

// Megabyte inputs built to make a backtracking regex go quadratic: long runs of the characters a
// pattern accepts, with the one character it needs missing, and prefixes repeated so that every
// position is a candidate start. Linear scans finish in milliseconds (bench: a throwaway script);
// a quadratic one would take hours, so completing within the per-test timeout is the assertion.
const MB = 1024 * 1024;
const fill = (unit: string): string => unit.repeat(Math.ceil(MB / unit.length)).slice(0, MB);

const CASES: ReadonlyArray<readonly [string, string]> = [
  ['digits', fill('1')],
  ['digits and spaces', fill('1 ')],
  ['digits and hyphens', fill('1-')],
  ['digits and dots', fill('1.')],
  ['card-like groups', fill('4111 ')],
  ['card-like hyphen groups', fill('4111-1111-')],
  ['plus and digits', fill('+1')],
  ['plus, digit, space', fill('+1 ')],
  ['international-like groups', fill('+44 20 ')],
  ['open parentheses and zeros', fill('(0')],
  ['NANP area codes', fill('(415) ')],
  ['NANP fragments', fill('415-555-')],
  ['national-like groups', fill('0 12 ')],
  ['SSN fragments', fill('123-45-')],
  ['SSN keyword then digits', fill('SSN: 1234')],
  ['repeated SSN keyword', fill('SSN ')],
  ['at signs', fill('@')],
  ['letter at', fill('a@')],
  ['a local part without @', fill('a')],
  ['dotted local part then @', `a${fill('.a')}@`],
  ['a domain of letter labels', `a@${fill('b.')}`],
  ['a domain of digit labels', `a@${fill('1.')}`],
  ['a one-label domain run', `a@${fill('b')}`],
  ['address fragments', fill('a@b.')],
  ['apostrophes in local parts', fill("a'")],
  ['apostrophe runs before each @', fill(`${"a'".repeat(32)}@`)],
  ['quoted starts then a megabyte domain', `${"'a".repeat(32)}@${fill('b.')}`],
  ['hex and colons', fill('a:')],
  ['colons', fill(':')],
  ['IPv6 fragments', fill('1:1::')],
  ['hex groups', fill('ffff:')],
  ['octets', fill('255.')],
  ['IBAN prefixes', fill('DE89 ')],
  ['an IBAN prefix then letters', `DE89${fill('A')}`],
  ['IBAN prefix runs', fill('DE8937')],
  ['IBAN groups', `DE89${fill(' AAAA')}`],
  ['repeated sk- prefixes', fill('sk-')],
  ['sk- then key characters', `sk-${fill('a')}`],
  ['repeated Bearer', fill('Bearer ')],
  ['Bearer then spaces', `Bearer${fill(' ')}`],
  ['api-key words', fill('api-key ')],
  ['api-key then spaces', `api-key${fill(' ')}`],
  ['AKIA prefixes', fill('AKIA')],
  ['aws secret names', fill('aws_secret_access_key= ')],
  ['JWT-like runs', fill('eyJ')],
  ['JWT parts without a signature', fill('eyJabcdefghij.eyJabcdefghij')],
  ['BEGIN markers', fill('-----BEGIN ')],
  ['private key BEGIN lines', fill('-----BEGIN PRIVATE KEY-----')],
  ['END markers after one BEGIN', `-----BEGIN PRIVATE KEY-----${fill('-----END ')}`],
  ['version words and numbers', fill('v 1.2.3.4 ')],
  ['mixed punctuation', fill('a1 @.:-+() ')],
  ['prose with numbers', fill('The order 4412 shipped on 2024-01-15 to a@b.co for $12.50. ')],
];

describe('linear time on adversarial 1 MB inputs', () => {
  const sanitizer = createSanitizer();
  it.each(CASES)('%s', (_label, text) => {
    expect(text.length).toBeGreaterThanOrEqual(MB);
    const { text: out, findings } = sanitizer.redact(text);
    expect(typeof out).toBe('string');
    expect(Array.isArray(findings)).toBe(true);
  }, 10_000);

  it('a 1 MB tool call argument and a 1 MB message in one request', () => {
    const params = {
      model: 'm',
      messages: [
        { role: 'user', content: fill('call +1 (415) 555-0132 or mail a@b.co; ') },
        { role: 'assistant', tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: JSON.stringify({ note: fill('4111 ') }) } }] },
      ],
    };
    const result = sanitizeRequest(chatRequest, params, sanitizer, 'redact');
    expect(result.total).toBeGreaterThan(10_000);
  }, 10_000);
});
