import { describe, it, expect } from 'vitest';
import {
  BUILTIN_TYPES,
  createSanitizer,
  sanitizeModeFromEnv,
  type Finding,
  type Sanitizer,
} from '../../../src/audit/sanitize/detectors';
import { knownIssuer, luhn, mod97, validIpv6 } from '../../../src/audit/sanitize/builtins';
import { processDefaults } from '../../../src/config/process-defaults';

// Fake credentials with the real shapes, assembled at run time (nothing here is a live key).
const ALNUM = 'AbCdEfGhIjKlMnOpQrStUvWxYz0123456789aBcDeFgHiJkL';
const OPENAI_LEGACY = `sk-${ALNUM}`;
const OPENAI_PROJECT = `sk-proj-${ALNUM}_${ALNUM}-${ALNUM}`;
const ANTHROPIC = `sk-ant-api03-${ALNUM}${ALNUM}-AbCdEf`;
const JWT = ['eyJhbGciOiJIUzI1NiJ9', 'eyJzdWIiOiIxMjM0NTY3ODkwIn0', 'dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U'].join('.');

const all = createSanitizer();

/** `[type, matched text]` pairs, in order. */
function found(text: string, sanitizer: Sanitizer = all): Array<[string, string]> {
  return sanitizer.scan(text).map((f) => [f.type, text.slice(f.start, f.end)]);
}

function only(type: string): Sanitizer {
  return createSanitizer({ types: [type] });
}

describe('EMAIL', () => {
  const email = only('EMAIL');
  it.each([
    ['maria.gonzalez@acme-logistics.com', 'write to maria.gonzalez@acme-logistics.com today'],
    ['tom.baker+news@gmail.com', '(tom.baker+news@gmail.com)'],
    ['priya_nair@infosys.co.in', '<priya_nair@infosys.co.in>'],
    ["KEVIN.O'BRIEN@CONTOSO.COM", "mail KEVIN.O'BRIEN@CONTOSO.COM now"],
    ['x@y.com', "where email = 'x@y.com'"],
    ['press@news.example.net', 'mailto:press@news.example.net?subject=hi'],
    ['sam99@yahoo.fr', 'email me: sam99@yahoo.fr.'],
  ])('finds %s', (address, text) => {
    expect(found(text, email)).toEqual([['EMAIL', address]]);
  });

  it.each([
    'replace logo@2x.png and icon@3x.webp',
    'npm i @anthropic-ai/sdk@1.12.0 lodash@4.17.21',
    'ping @maria on Slack',
    'ssh root@localhost',
    'john..doe@example.com is malformed',
    'user@host.c0m has a digit in its TLD',
    '@decorator(app.route)',
  ])('leaves %j alone', (text) => {
    expect(found(text, email)).toEqual([]);
  });

  it('does not take a local part longer than 64 characters', () => {
    expect(found(`${'a'.repeat(65)}@example.com`, email)).toEqual([]);
    expect(found(`${'a'.repeat(64)}@example.com`, email)).toEqual([['EMAIL', `${'a'.repeat(64)}@example.com`]]);
  });
});

describe('PHONE', () => {
  const phone = only('PHONE');
  it.each([
    '+1 (415) 555-0132',
    '+44 20 7946 0958',
    '+44 (0)20 7946 0321',
    '+49 151 23456789',
    '+4915112345678',
    '+33 1 42 68 53 00',
    '+81 3-1234-5678',
    '(212) 555-0187',
    '646-555-0143',
    '312.555.0199',
    '1-800-555-0199',
    '1 (800) 555-0123',
    '415 555 0176',
    '020 7946 0958',
    '07700 900123',
    '030/901820',
    '0151 2345 6789',
    '06 12 34 56 78',
    '01.42.68.53.00',
    '06-12345678',
    '089 1234567-10',
  ])('finds %s', (number) => {
    expect(found(`Call ${number} today.`, phone)).toEqual([['PHONE', number]]);
  });

  it('finds a number in a CSV row and in JSON', () => {
    expect(found('1042,Smith,555-867-5309,TX', phone)).toEqual([['PHONE', '555-867-5309']]);
    expect(found('{"tel":"+41 44 668 18 00"}', phone)).toEqual([['PHONE', '+41 44 668 18 00']]);
  });

  it.each([
    ['ISO dates', 'on 2024-09-15 and 2023-01-02'],
    ['European dates', 'from 15.03.2024 to 01.04.2024, or 05/11/2023'],
    ['a date-prefixed reference', 'Reference 05-11-2023-0042'],
    ['order ids', 'Order #2024-0915-3321 and INV-20240315-0042'],
    ['bare long numbers', 'call 4155550132, timestamp 1718035200, EAN 4006381333931'],
    ['an ISBN', 'ISBN 978-0-306-40615-7'],
    ['version and build numbers', 'release 2.14.3 build 4521'],
    ['thousands groups', 'population 8 336 817, amount 12,345,678.90'],
    ['a zip+4', 'zip 94103-1234'],
    ['a longer serial', 'serial 555-123-45678'],
    ['an amount with a plus', 'revenue +12345678.90'],
    ['build metadata', 'version 10.2.0+20240615'],
    ['short plus numbers', '+5 points, +1234567'],
    ['coordinates', '40.7128, -74.0060'],
    ['an SSN', '536-22-4197'],
  ])('leaves %s alone', (_label, text) => {
    expect(found(text, phone)).toEqual([]);
  });

  it('does not start in the middle of a longer number', () => {
    expect(found('ID 12 415-555-0132', phone)).toEqual([]);
    expect(found('x415-555-0132', phone)).toEqual([]);
  });
});

describe('SSN', () => {
  const ssn = only('SSN');
  it.each(['536-22-4197', '212 67 4450', '660-43-7812', '001-01-0001', '899-99-9999'])('finds %s', (value) => {
    expect(found(`SSN ${value} on file`, ssn)).toEqual([['SSN', value]]);
  });

  it.each([
    ['area 000', '000-12-3456'],
    ['area 666', '666-12-3456'],
    ['area 9xx', '912-34-5678'],
    ['group 00', '123-00-4567'],
    ['serial 0000', '123-45-0000'],
    ['mixed separators', '123-45 6789'],
    ['a 3-3-3 part number', '123-456-789'],
    ['a longer number', '123-45-67890'],
    ['a dashed tail of a longer number', '2019-45-6789'],
    ['a spaced tail of a longer number', '123 45 6789 0000'],
    ['nine bare digits without context', 'order 536224197'],
    ['an EIN', 'EIN 12-3456789'],
  ])('rejects %s', (_label, text) => {
    expect(found(text, ssn)).toEqual([]);
  });

  it.each(['SSN: 123456780', 'ssn 123456780', 'SSN is 123456780', 'social security number 123456780', 'Social Security No. 123456780'])(
    'finds nine bare digits right after an SSN keyword: %s',
    (text) => {
      expect(found(text, ssn)).toEqual([['SSN', '123456780']]);
    },
  );

  it('applies the area rules to bare digits too', () => {
    expect(found('SSN: 666456780', ssn)).toEqual([]);
    expect(found('SSN: 900456780', ssn)).toEqual([]);
  });
});

describe('CARD', () => {
  const card = only('CARD');
  it.each([
    ['Visa 16', '4917 4002 9755 0473'],
    ['Visa unseparated', '4368813984916514'],
    ['Visa hyphens', '4564-7134-1093-5736'],
    ['Visa 13', '4898053964592'],
    ['Visa 19', '4118 8319 4436 7329 380'],
    ['Mastercard', '5327 0269 6173 1973'],
    ['Mastercard 2-series', '2221 7618 6746 1341'],
    ['Amex 4-6-5', '3448 758466 97498'],
    ['Amex unseparated', '377772674755292'],
    ['Discover', '6011 6945 6724 8095'],
    ['JCB', '3530 2490 6871 7319'],
    ['Diners 4-6-4', '3655 239520 1104'],
    ['UnionPay 19', '6291454501844476751'],
    ['Maestro', '6759 0139 3802 5502'],
    ['Mir', '2200 0365 1216 8277'],
  ])('finds a %s number', (_label, number) => {
    expect(found(`card ${number}, exp 08/27`, card)).toEqual([['CARD', number]]);
  });

  it.each([
    ['a failed Luhn check', '4712 1580 2822 4285'],
    ['an unknown issuer (Luhn-valid)', '9733834904858195'],
    ['a Visa prefix at a length Visa does not issue', '4111111111111111111'.slice(0, 15)],
    ['a Mastercard prefix at 19 digits', '5327026961731973000'],
    ['an IMEI (Luhn-valid, 15 digits)', '356823696987440'],
    ['mixed separators', '4917 4002-9755 0473'],
    ['an odd grouping', '49174 00297 550473'],
    ['an amount', '4917400297550473.50'],
    ['a longer digit run', '49174002975504731234'],
    ['a UUID', '3f2b8c1e-9a4d-4e7b-8c21-5d6e7f8a9b0c'],
  ])('rejects %s', (_label, text) => {
    expect(found(`ref ${text} ok`, card)).toEqual([]);
  });

  it('finds a card followed by another number (expiry, CVV)', () => {
    expect(found('4917 4002 9755 0473 12/26', card)).toEqual([['CARD', '4917 4002 9755 0473']]);
    expect(found('4917 4002 9755 0473 123', card)).toEqual([['CARD', '4917 4002 9755 0473']]);
  });

  it('checks Luhn and issuer ranges', () => {
    expect(luhn('79927398713')).toBe(true);
    expect(luhn('79927398710')).toBe(false);
    expect(knownIssuer('4917400297550473')).toBe(true);
    expect(knownIssuer('2721000000000000')).toBe(false); // past the Mastercard 2-series
    expect(knownIssuer('3400000000000000')).toBe(false); // Amex is 15 digits
  });
});

describe('IBAN', () => {
  const iban = only('IBAN');
  it.each([
    'DE62 1296 7788 7362 7056 45',
    'DE34245953042169931366',
    'GB47 TTXE 8875 5964 1420 19',
    'FR51 8811 1135 5232 2327 7919 273',
    'NL27AIXD4140007750',
    'NO31 7744 3008 862',
    'MT61 0041 6833 6898 9716 9822 9346 460',
    'pt83 0636 9105 5746 6458 9590 6',
  ])('finds %s', (value) => {
    expect(found(`IBAN ${value}, thanks`, iban)).toEqual([['IBAN', value]]);
  });

  it('ends the IBAN at its country length even when words follow', () => {
    expect(found('to DE62 1296 7788 7362 7056 45 is my account', iban)).toEqual([['IBAN', 'DE62 1296 7788 7362 7056 45']]);
    expect(found('BE02 8788 4205 0394 and CH34 3240 4453 2901 5925 2', iban)).toEqual([
      ['IBAN', 'BE02 8788 4205 0394'],
      ['IBAN', 'CH34 3240 4453 2901 5925 2'],
    ]);
  });

  it.each([
    ['wrong check digits', 'DE38439782802138479038'],
    ['a valid IBAN with one digit changed', 'DE62 1296 7788 7362 7056 46'],
    ['one character short', 'FR684080761552480942451895'],
    ['an unknown country', 'XX12 3456 7890 1234 5678'],
    ['check digits 00', 'DE00 1296 7788 7362 7056 45'],
    ['irregular grouping', 'DE62 12967788 7362 7056 45'],
    ['a hex hash', 'de45b2c1f09a7e3d5c8b1a2f4e6d8c0b9a7f5e3d'],
    ['a product code', 'GB12AB34CD56'],
  ])('rejects %s', (_label, text) => {
    expect(found(text, iban)).toEqual([]);
  });

  it('computes ISO 7064 mod 97-10', () => {
    expect(mod97('DE62129677887362705645')).toBe(1);
    expect(mod97('DE62129677887362705646')).not.toBe(1);
  });
});

describe('IP', () => {
  const ip = only('IP');
  it.each([
    ['203.0.113.42', 'from 203.0.113.42.'],
    ['0.0.0.0', 'bind 0.0.0.0:8080'],
    ['192.0.2.0', 'allow 192.0.2.0/24'],
    ['255.255.255.0', 'mask 255.255.255.0'],
    ['2001:db8:85a3::8a2e:370:7334', 'client 2001:db8:85a3::8a2e:370:7334 connected'],
    ['2001:0db8:0000:0000:0000:ff00:0042:8329', 'full 2001:0db8:0000:0000:0000:ff00:0042:8329'],
    ['fe80::1', 'link fe80::1%eth0'],
    ['::1', 'listen on [::1]:3000'],
    ['2001:db8::10', 'https://[2001:db8::10]:443/'],
    ['::ffff:192.0.2.128', 'mapped ::ffff:192.0.2.128.'],
    ['2001:db8::', 'prefix 2001:db8:: here'],
  ])('finds %s', (value, text) => {
    expect(found(text, ip)).toEqual([['IP', value]]);
  });

  it.each([
    ['an octet over 255', '256.100.50.25'],
    ['three parts', '192.168.1'],
    ['five parts', '1.2.3.4.5'],
    ['leading zeros', '01.02.03.04'],
    ['an OID', '1.3.6.1.4.1.311'],
    ['a v-prefixed version', 'v1.2.3.4'],
    ['a version after its word', 'version 1.2.3.4 and build 10.0.0.1'],
    ['a section number', 'Section 3.2.1.4'],
    ['a time', '12:30:45'],
    ['a MAC address', '00:1A:2B:3C:4D:5E'],
    ['C++ scopes', 'std::vector and a::b::c'],
    ['a ratio', '16:9'],
    ['hex words', 'dead:beef::cafe'],
    ['two ::', '1::2::3'],
    ['nine groups', '1:2:3:4:5:6:7:8:9'],
    ['a port mapping', '-p 8080:80'],
    ['a bare ::', 'a :: b'],
  ])('rejects %s', (_label, text) => {
    expect(found(text, ip)).toEqual([]);
  });

  it('parses IPv6 text forms', () => {
    expect(validIpv6('1:2:3:4:5:6:7:8')).toBe(true);
    expect(validIpv6('1:2:3:4:5:6:7::')).toBe(true);
    expect(validIpv6('1:2:3:4:5:6:7:8::')).toBe(false);
    expect(validIpv6('::1:2:3:4:5:6:1.2.3.4')).toBe(false);
    expect(validIpv6('::1:2:3:4:5:1.2.3.4')).toBe(true);
    expect(validIpv6('12345::1')).toBe(false);
  });
});

describe('SECRET', () => {
  const secret = only('SECRET');
  it.each([
    ['an OpenAI legacy key', OPENAI_LEGACY],
    ['an OpenAI project key', OPENAI_PROJECT],
    ['an Anthropic key', ANTHROPIC],
    ['an AWS access key id', 'AKIAIOSFODNN7EXAMPLE'],
    ['an AWS temporary key id', 'ASIAY34FZKBOKMUTVV7A'],
    ['a JWT', JWT],
  ])('finds %s, the whole key', (_label, key) => {
    expect(found(`key=${key}; retry`, secret)).toEqual([['SECRET', key]]);
  });

  it('finds the token of a bearer header, not the scheme', () => {
    expect(found(`Authorization: Bearer ${ALNUM}`, secret)).toEqual([['SECRET', ALNUM]]);
    const { text } = secret.redact(`authorization: bearer ${JWT}`);
    expect(text).toBe('authorization: bearer [SECRET]');
  });

  it('finds api-key header values and AWS secret access keys next to their name', () => {
    expect(found('{"x-api-key": "ak_live_7Hf2kLq9Zx81mPz"}', secret)).toEqual([['SECRET', 'ak_live_7Hf2kLq9Zx81mPz']]);
    expect(found('aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', secret)).toEqual([
      ['SECRET', 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'],
    ]);
  });

  it('finds a whole private key block, or a truncated one to the end of the text', () => {
    const block = '-----BEGIN RSA PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END RSA PRIVATE KEY-----';
    expect(found(`key:\n${block}\nthanks`, secret)).toEqual([['SECRET', block]]);
    const truncated = '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA';
    expect(found(`pasted ${truncated}`, secret)).toEqual([['SECRET', truncated]]);
  });

  it.each([
    ['a phrase after sk-', 'we use sk-learn-style-pipelines-for-classification'],
    ['a placeholder', 'sk-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'],
    ['a hyphenated word', 'the task-list-for-the-assistant-to-process'],
    ['bearer in prose', 'the bearer of bad news; use a Bearer token'],
    ['a short bearer value', 'Bearer abc123'],
    ['an env var reference', 'Authorization: Bearer $API_TOKEN'],
    ['a certificate', '-----BEGIN CERTIFICATE-----\nMIIDdzCCAl+gAwIBAgIE\n-----END CERTIFICATE-----'],
    ['a public key', '-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYI\n-----END PUBLIC KEY-----'],
    ['a git sha', '06a5205fa18770ece72b038e69bcba057873df86'],
    ['an AKIA prefix alone', 'AKIA is the prefix; AKIAshort is not an id'],
  ])('leaves %s alone', (_label, text) => {
    expect(found(text, secret)).toEqual([]);
  });
});

describe('overlaps', () => {
  it('keeps the longest finding when two overlap', () => {
    // A pasted key block with an address and a host inside: one SECRET, not three findings.
    const block = '-----BEGIN PRIVATE KEY-----\nMIIEvQ a@b.co 10.0.0.1\n-----END PRIVATE KEY-----';
    expect(found(`see ${block} and c@d.co`)).toEqual([
      ['SECRET', block],
      ['EMAIL', 'c@d.co'],
    ]);
  });

  it('breaks a length tie by position, then by type order', () => {
    const custom = createSanitizer({
      types: [],
      patterns: [
        { type: 'BBB', pattern: /abcd/ },
        { type: 'AAA', pattern: /bcde/ },
        { type: 'CCC', pattern: /abcd/ },
      ],
    });
    // abcd (BBB, CCC) and bcde (AAA) overlap, all of length 4: the earliest wins, then the type
    // listed first.
    expect(found('xabcdex', custom)).toEqual([['BBB', 'abcd']]);
  });

  it('lets a built-in win a tie against a custom type, and SECRET win against any built-in', () => {
    const s = createSanitizer({ patterns: [{ type: 'DIGITS', pattern: /\b\d{3}-\d{2}-\d{4}\b/ }] });
    expect(found('ssn 536-22-4197', s)).toEqual([['SSN', '536-22-4197']]);
    expect(BUILTIN_TYPES[0]).toBe('SECRET');
  });

  it('does not drop a finding because a longer one overlapped a neighbour', () => {
    // A [0,10) B [8,19) C [18,30): C is kept, B overlaps C, A does not overlap C and is kept.
    const s = createSanitizer({
      types: [],
      patterns: [
        { type: 'A', pattern: /^.{10}/ },
        { type: 'B', pattern: /(?<=^.{8}).{11}/ },
        { type: 'C', pattern: /(?<=^.{18}).{12}/ },
      ],
    });
    const text = 'x'.repeat(30);
    expect(s.scan(text)).toEqual([
      { type: 'A', start: 0, end: 10 },
      { type: 'C', start: 18, end: 30 },
    ]);
  });

  it('collapses identical findings into one', () => {
    const s = createSanitizer({ types: ['EMAIL'], patterns: [{ type: 'EMAIL', pattern: /\S+@\S+/ }] });
    expect(s.scan('a@example.com')).toEqual([{ type: 'EMAIL', start: 0, end: 13 }]);
  });

  it('returns findings sorted by start, non-overlapping', () => {
    const text = `mail a@b.co, call +1 (415) 555-0132, card 4917 4002 9755 0473, ip 10.0.0.1, key ${OPENAI_LEGACY}`;
    const findings = all.scan(text);
    expect(findings.map((f) => f.type)).toEqual(['EMAIL', 'PHONE', 'CARD', 'IP', 'SECRET']);
    for (let i = 1; i < findings.length; i++) expect(findings[i]!.start).toBeGreaterThanOrEqual(findings[i - 1]!.end);
  });
});

describe('redact', () => {
  it('replaces each finding with [TYPE] and returns the findings as offsets into the input', () => {
    const text = 'Mail jane@example.com or call (212) 555-0187.';
    const result = all.redact(text);
    expect(result.text).toBe('Mail [EMAIL] or call [PHONE].');
    expect(result.findings.map((f) => text.slice(f.start, f.end))).toEqual(['jane@example.com', '(212) 555-0187']);
  });

  it('returns the very same string when nothing is found', () => {
    const text = 'Nothing to see: version 1.2.3, order 4412, 2024-01-15.';
    const result = all.redact(text);
    expect(result.text).toBe(text);
    expect(result.findings).toEqual([]);
  });

  it('handles empty and non-string input without throwing', () => {
    expect(all.scan('')).toEqual([]);
    expect(all.redact('')).toEqual({ text: '', findings: [] });
    expect(all.scan(undefined as unknown as string)).toEqual([]);
  });

  it('finds the same things on every call (no regex state leaks between scans)', () => {
    const text = 'a@b.co 10.0.0.1 4917 4002 9755 0473';
    const first = all.scan(text);
    all.scan('x@y.co');
    expect(all.scan(text)).toEqual(first);
  });
});

describe('options', () => {
  it('runs only the listed built-in types', () => {
    const s = createSanitizer({ types: ['EMAIL', 'IP'] });
    expect(found('a@b.co 10.0.0.1 536-22-4197 +1 (415) 555-0132', s).map(([t]) => t)).toEqual(['EMAIL', 'IP']);
    expect(createSanitizer({ types: [] }).scan('a@b.co')).toEqual([]);
  });

  it('rejects unknown types and malformed options with a clear error', () => {
    expect(() => createSanitizer({ types: ['EMAILS'] })).toThrow(/unknown sanitizer type "EMAILS"/);
    expect(() => createSanitizer({ patterns: [{ type: 'lower', pattern: /x/ }] })).toThrow(/\[A-Z\]\[A-Z0-9_\]\*/);
    expect(() => createSanitizer({ patterns: [{ type: 'BAD', pattern: '(' }] })).toThrow(/BAD: invalid regular expression/);
    expect(() => createSanitizer({ patterns: [{ type: 'BAD', pattern: 42 as unknown as string }] })).toThrow(/RegExp or a string/);
    expect(() => createSanitizer({ hook: 'x' as unknown as () => void })).toThrow(/hook/);
  });
});

describe('custom patterns', () => {
  it('adds a type from a RegExp without the g flag, and from a string', () => {
    const s = createSanitizer({
      types: [],
      patterns: [
        { type: 'EMPLOYEE_ID', pattern: /\bEMP-\d{6}\b/ },
        { type: 'TICKET', pattern: String.raw`\bJIRA-\d+\b` },
      ],
    });
    const { text } = s.redact('EMP-004211 opened JIRA-77 and EMP-009999 closed JIRA-78');
    expect(text).toBe('[EMPLOYEE_ID] opened [TICKET] and [EMPLOYEE_ID] closed [TICKET]');
  });

  it("keeps the pattern's flags, drops sticky, and does not touch the caller's RegExp", () => {
    const caller = /emp-\d+/iy;
    caller.lastIndex = 5;
    const s = createSanitizer({ types: [], patterns: [{ type: 'EMP', pattern: caller }] });
    expect(found('x EMP-1 y emp-2', s)).toEqual([
      ['EMP', 'EMP-1'],
      ['EMP', 'emp-2'],
    ]);
    expect(caller.lastIndex).toBe(5);
    expect(caller.flags).toBe('iy');
  });

  it('skips empty matches instead of looping', () => {
    const s = createSanitizer({ types: [], patterns: [{ type: 'MAYBE', pattern: /x*/ }, { type: 'U', pattern: /(?:)/u }] });
    expect(found('ab xx c 😀', s)).toEqual([['MAYBE', 'xx']]);
  });
});

describe('hook', () => {
  it('sees the text and the findings, and may remove findings', () => {
    const seen: Array<[string, readonly Finding[]]> = [];
    const s = createSanitizer({
      hook: (text, findings) => {
        seen.push([text, findings]);
        // Internal test addresses are not personal data.
        return findings.filter((f) => !text.slice(f.start, f.end).endsWith('@test.internal'));
      },
    });
    const text = 'qa@test.internal and ana@example.com';
    expect(s.redact(text).text).toBe('qa@test.internal and [EMAIL]');
    expect(seen[0]![0]).toBe(text);
    expect(seen[0]![1]).toHaveLength(2);
  });

  it('may add findings, which go through overlap resolution', () => {
    const s = createSanitizer({
      hook: (text, findings) => {
        const i = text.indexOf('Project Falcon');
        return i === -1 ? undefined : [...findings, { type: 'CODENAME', start: i, end: i + 14 }];
      },
    });
    expect(s.redact('Project Falcon launches; mail a@b.co').text).toBe('[CODENAME] launches; mail [EMAIL]');
    expect(s.redact('nothing here, a@b.co').text).toBe('nothing here, [EMAIL]');
  });

  it('gets frozen copies: mutating them cannot change the result', () => {
    const s = createSanitizer({
      hook: (_text, findings) => {
        expect(Object.isFrozen(findings)).toBe(true);
        expect(Object.isFrozen(findings[0])).toBe(true);
      },
    });
    expect(s.redact('a@b.co').text).toBe('[EMAIL]');
  });

  it('rejects invalid findings from the hook', () => {
    const bad = (finding: unknown) => createSanitizer({ hook: () => [finding as Finding] });
    expect(() => bad({ type: 'X', start: 0, end: 99 }).scan('short')).toThrow(/invalid finding at index 0/);
    expect(() => bad({ type: 'X', start: 2, end: 2 }).scan('short')).toThrow(/invalid finding/);
    expect(() => bad({ type: 'x', start: 0, end: 1 }).scan('short')).toThrow(/invalid finding/);
    expect(() => bad(null).scan('short')).toThrow(/invalid finding/);
    expect(() => createSanitizer({ hook: () => 'no' as unknown as Finding[] }).scan('a')).toThrow(/array of findings/);
  });
});

describe('sanitizeModeFromEnv', () => {
  it('is off when unset or empty', () => {
    expect(sanitizeModeFromEnv({})).toBe('off');
    expect(sanitizeModeFromEnv({ LLM_AUDIT_SANITIZE: '' })).toBe('off');
    expect(sanitizeModeFromEnv({ LLM_AUDIT_SANITIZE: '  ' })).toBe('off');
  });

  it('reads off, detect and redact, in any case and with spaces around', () => {
    expect(sanitizeModeFromEnv({ LLM_AUDIT_SANITIZE: 'off' })).toBe('off');
    expect(sanitizeModeFromEnv({ LLM_AUDIT_SANITIZE: 'detect' })).toBe('detect');
    expect(sanitizeModeFromEnv({ LLM_AUDIT_SANITIZE: ' REDACT ' })).toBe('redact');
  });

  it('throws a clear error for anything else', () => {
    expect(() => sanitizeModeFromEnv({ LLM_AUDIT_SANITIZE: 'on' })).toThrow('LLM_AUDIT_SANITIZE must be one of off, detect, redact; got "on"');
    expect(() => sanitizeModeFromEnv({ LLM_AUDIT_SANITIZE: 'x'.repeat(100) })).toThrow(/got "x{40}…"/);
  });

  it('reads only the environment it is given; the process environment is read by src/config for an instrumentation built without a mode', () => {
    const before = process.env['LLM_AUDIT_SANITIZE'];
    process.env['LLM_AUDIT_SANITIZE'] = 'detect';
    try {
      expect(sanitizeModeFromEnv({})).toBe('off');
      expect(processDefaults.sanitize()).toBe('detect');
    } finally {
      if (before === undefined) delete process.env['LLM_AUDIT_SANITIZE'];
      else process.env['LLM_AUDIT_SANITIZE'] = before;
    }
  });
});

describe('normalisation before detection (issue 14 item 9)', () => {
  const sanitizer = createSanitizer();

  it.each([
    ['a zero-width space inside an e-mail', 'write to jane\u200b.doe@exam\u200bple.org today', 'EMAIL', 'write to [EMAIL] today'],
    ['a zero-width joiner and a BOM inside an e-mail', 'mail j\u200dane.doe@example.org\ufeff now', 'EMAIL', 'mail [EMAIL]\ufeff now'],
    ['a soft hyphen inside an e-mail', 'jane.\u00addoe@example.org', 'EMAIL', '[EMAIL]'],
    ['full-width digits of a card', 'card \uff14\uff11\uff11\uff11 \uff11\uff11\uff11\uff11 \uff11\uff11\uff11\uff11 \uff11\uff11\uff11\uff11 ok', 'CARD', 'card [CARD] ok'],
    ['a full-width @ in an e-mail', 'jane.doe\uff20example.org', 'EMAIL', '[EMAIL]'],
    ['mathematical digits of an SSN', 'ssn \u{1d7df}\u{1d7e0}\u{1d7e1}-45-6789', 'SSN', 'ssn [SSN]'],
  ])('finds %s and redacts it in the original text', (_label, text, type, redacted) => {
    expect(sanitizer.scan(text).map((f) => f.type)).toEqual([type]);
    expect(sanitizer.redact(text).text).toBe(redacted);
  });

  it('offsets are into the original text; text without anything to normalise is scanned as before', () => {
    const text = 'x \uff11\uff12\uff13-45-6789 y';
    const [finding] = sanitizer.scan(text);
    expect(text.slice(finding!.start, finding!.end)).toBe('\uff11\uff12\uff13-45-6789');
    expect(sanitizer.scan('plain 123-45-6789')).toEqual([{ type: 'SSN', start: 6, end: 17 }]);
    // Full-width text that holds nothing stays as it was.
    expect(sanitizer.redact('\uff28\uff45\uff4c\uff4c\uff4f\u3001\u4e16\u754c').text).toBe('\uff28\uff45\uff4c\uff4c\uff4f\u3001\u4e16\u754c');
  });
});
