/**
 * The end user's IP address (`withAuditContext({ clientAddress })`) is personal data (GDPR recital
 * 30, CJEU Breyer): the record keeps only as much of it as the operator chose with
 * `LLM_AUDIT_CLIENT_ADDRESS`:
 *
 * - `full`: the address as given;
 * - `truncated` (the default): the network, not the host: IPv4 to its /24 (`203.0.113.0`), IPv6 to
 *   its /48 (`2001:db8:85a3::`), which still tells an incident responder the network and
 *   the country of a login storm, and cannot be reversed to one subscriber by anyone;
 * - `hashed`: the keyed HMAC of the content hashes (`hmac-sha256:<keyId>:…`): the same address
 *   gives the same value, so repeated failures from one client can be linked, but only a holder of
 *   the key can test a guess (and IPv4's 2^32 addresses are a guess away for that holder, which is
 *   why it is not the default);
 * - `off`: no address is recorded.
 *
 * A value that is not an IP address (a host name, `unknown`) cannot be truncated: it is hashed.
 */
import { isIP } from 'node:net';
import type { ContentHasher } from './hashing';

export const CLIENT_ADDRESS_MODES = ['full', 'truncated', 'hashed', 'off'] as const;
export type ClientAddressMode = (typeof CLIENT_ADDRESS_MODES)[number];
export const DEFAULT_CLIENT_ADDRESS_MODE: ClientAddressMode = 'truncated';

/** `LLM_AUDIT_CLIENT_ADDRESS`; throws on a value that is not a mode (a configuration error stops `register`). */
export function clientAddressModeFromEnv(env: NodeJS.ProcessEnv): ClientAddressMode {
  const raw = env.LLM_AUDIT_CLIENT_ADDRESS;
  const value = raw?.trim().toLowerCase();
  if (value === undefined || value === '') return DEFAULT_CLIENT_ADDRESS_MODE;
  if ((CLIENT_ADDRESS_MODES as readonly string[]).includes(value)) return value as ClientAddressMode;
  const shown = raw!.length > 40 ? `${raw!.slice(0, 40)}…` : raw;
  throw new Error(`LLM_AUDIT_CLIENT_ADDRESS must be one of ${CLIENT_ADDRESS_MODES.join(', ')}; got ${JSON.stringify(shown)}`);
}

/** What `client.address` records of `address` under `mode`; undefined for `off`. */
export function recordedClientAddress(address: string, mode: ClientAddressMode, hasher: ContentHasher): string | undefined {
  if (mode === 'off') return undefined;
  if (mode === 'full') return address;
  if (mode === 'hashed') return hasher.hash(address);
  return truncate(address.trim()) ?? hasher.hash(address);
}

function truncate(address: string): string | undefined {
  // An IPv4-mapped IPv6 address (`::ffff:203.0.113.7`, what a dual-stack server socket reports) is an IPv4 client.
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  const ip = mapped ? mapped[1]! : address;
  const version = isIP(ip);
  if (version === 4) return ip.split('.').slice(0, 3).concat('0').join('.');
  if (version !== 6) return undefined;
  // The zone (`%eth0`) names an interface of the server, not the client.
  const [bare] = ip.split('%') as [string];
  const [head, tail = ''] = bare.split('::') as [string, string?];
  const left = head === '' ? [] : head.split(':');
  const right = bare.includes('::') && tail !== '' ? tail.split(':') : [];
  // An embedded IPv4 tail takes two groups; it is past the /48 anyway.
  const groups = [...left, ...Array(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right];
  return `${groups.slice(0, 3).map((g) => (parseInt(g, 16) || 0).toString(16)).join(':')}::`;
}
