/**
 * Remembers how far a conversation has already been hashed.
 *
 * Chat applications and agent loops send the same history again on every call, one or two turns
 * longer each time. The input hash covers the canonical text of the whole message list, so without
 * help every call canonicalises and hashes every earlier turn again: at 10 KB that is most of what
 * an audited call costs. The hash itself must not change (an auditor recomputes it from their copy
 * of the request with any RFC 8785 implementation and HMAC-SHA-256), so what is remembered is the
 * hash *state* after `[m0,m1,…,mk` and, beside it, a snapshot of what those messages held. A later
 * call whose list starts with the same message objects, unchanged, resumes from that state and
 * hashes only the new turns.
 *
 * "Unchanged" is checked, not assumed: messages are mutable objects, and a stale state would put a
 * wrong hash in the audit trail. The snapshot records every JSON-visible value of a message (member
 * names in order, strings, numbers, nested plain objects and arrays), and a resumed state is used
 * only when the message objects are the same ones and every recorded value is still `===`. Values
 * that cannot be checked that way (class instances, anything with `toJSON`, very large or deep
 * structures) are never covered by a remembered state; the list is then hashed from that point on
 * as before. (A getter that answered differently on each read would defeat the check, but it would
 * equally make the SDK send something other than what any hash covers.)
 *
 * Memory: entries live in a WeakMap keyed by the last message object they cover, and hold the
 * message objects they cover (to check identity) and their snapshots. An entry keyed by a message
 * that is still alive would keep alive the earlier messages it covers, which may key older entries
 * in turn; so a conversation keeps one entry: the one a list resumed from is replaced by the longer
 * list's, and an entry found not to cover the list it was found in (the conversation was trimmed, a
 * window slid) is dropped. What stays alive is then what the application's own lists hold, plus at
 * most the previous list's messages. The hash state itself is a few hundred bytes of native memory.
 */

/** A value's JSON-visible content: primitives as themselves, objects and arrays as a node. */
type Snapshot = string | number | boolean | null | undefined | SnapshotNode;

class SnapshotNode {
  constructor(
    /** Member names in `Object.keys` order, or the length for an array. */
    readonly keys: readonly string[] | number,
    readonly values: readonly Snapshot[],
  ) {}
}

/** Returned when a value cannot be checked by a snapshot (see the module comment). */
const UNCHECKABLE: unique symbol = Symbol('uncheckable');

// A chat message is a handful of nodes (content parts, tool calls); these bounds only keep a
// pathological value (a huge nested tool result, a cycle) from making snapshots expensive.
const MAX_NODES = 512;
const MAX_DEPTH = 16;

/** A snapshot of `value`, or UNCHECKABLE. */
export function takeSnapshot(value: unknown): Snapshot | typeof UNCHECKABLE {
  const budget = { nodes: MAX_NODES };
  return snapshotOf(value, 0, budget);
}

function snapshotOf(value: unknown, depth: number, budget: { nodes: number }): Snapshot | typeof UNCHECKABLE {
  switch (typeof value) {
    case 'string':
    case 'boolean':
    case 'undefined':
      return value;
    case 'number':
      // NaN would never compare equal; canonical JSON rejects it (and the infinities) anyway.
      return Number.isFinite(value) ? value : UNCHECKABLE;
    case 'object':
      break;
    default:
      return UNCHECKABLE; // bigint, symbol, function
  }
  if (value === null) return null;
  if (depth >= MAX_DEPTH || --budget.nodes < 0) return UNCHECKABLE;
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return UNCHECKABLE;
  const proto = Object.getPrototypeOf(value);
  if (Array.isArray(value)) {
    if (proto !== Array.prototype) return UNCHECKABLE;
    const values: Snapshot[] = new Array(value.length);
    for (let i = 0; i < value.length; i++) {
      const item = snapshotOf(value[i], depth + 1, budget);
      if (item === UNCHECKABLE) return UNCHECKABLE;
      values[i] = item;
    }
    return new SnapshotNode(value.length, values);
  }
  if (proto !== Object.prototype && proto !== null) return UNCHECKABLE;
  const keys = Object.keys(value);
  const record = value as Record<string, unknown>;
  const values: Snapshot[] = new Array(keys.length);
  for (let i = 0; i < keys.length; i++) {
    const item = snapshotOf(record[keys[i]!], depth + 1, budget);
    if (item === UNCHECKABLE) return UNCHECKABLE;
    values[i] = item;
  }
  return new SnapshotNode(keys, values);
}

/** Whether `value` still holds exactly what `snapshot` recorded. */
export function matchesSnapshot(value: unknown, snapshot: Snapshot): boolean {
  if (!(snapshot instanceof SnapshotNode)) return value === snapshot;
  if (typeof value !== 'object' || value === null) return false;
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return false;
  const { keys, values } = snapshot;
  if (typeof keys === 'number') {
    if (!Array.isArray(value) || value.length !== keys) return false;
    for (let i = 0; i < keys; i++) if (!matchesSnapshot(value[i], values[i])) return false;
    return true;
  }
  if (Array.isArray(value)) return false;
  const now = Object.keys(value);
  if (now.length !== keys.length) return false;
  const record = value as Record<string, unknown>;
  for (let i = 0; i < now.length; i++) {
    if (now[i] !== keys[i] || !matchesSnapshot(record[now[i]!], values[i])) return false;
  }
  return true;
}

export interface Entry<State> {
  /** The messages covered, in order (the key is the last of them). */
  readonly items: readonly unknown[];
  readonly snapshots: readonly Snapshot[];
  /** The hash state after `[` and the canonical text of `items`, comma-separated. */
  readonly state: State;
  /**
   * The finished hash of exactly `items` (the state, then `]`), once a list has been sent again
   * unchanged: an agent loop that calls twice on one history (a retry, a tool round without new
   * turns) or a bench loop gets it without copying and finishing the state.
   */
  final?: string;
}

/** What a list's longest remembered prefix gives: how many items it covers and the state after them. */
export interface Resume<State> {
  /** The message the entry is keyed by (the last one covered). */
  readonly key: object;
  readonly covered: number;
  readonly state: State;
  /** The covered items' snapshots, reused when the longer list is remembered. */
  readonly snapshots: readonly Snapshot[];
  /** The entry resumed from: its finished hash is kept on it (see Entry.final). */
  readonly entry: Entry<State>;
}

// Lists are usually found by their last item or the one or two before it; a few failed candidates
// (messages reused across conversations) are tolerated before giving up.
const MAX_CANDIDATES = 4;

// Remembering a list costs about as much again as hashing it (snapshots, a copied hash state and a
// WeakMap entry, which the garbage collector pays for), and an application that builds new message
// objects for every request (a server that receives the whole conversation each time) never gets
// anything back. So after this many lists in a row without a resume, only one list in PROBE_EVERY
// is remembered, until a resume shows that lists are being sent again.
export const MISS_STREAK = 64;
export const PROBE_EVERY = 16;

/**
 * That rule, for one kind of thing remembered (the memo's hash states, core/snapshot.ts's request
 * copies): told whether each use found something remembered, it says whether the next is worth
 * remembering.
 */
export class RememberRule {
  #misses = 0;
  #probe = 0;

  found(): void {
    this.#misses = 0;
  }

  missed(): void {
    if (this.#misses <= MISS_STREAK) this.#misses++;
  }

  worthRemembering(): boolean {
    if (this.#misses <= MISS_STREAK) return true;
    this.#probe = (this.#probe + 1) % PROBE_EVERY;
    return this.#probe === 0;
  }
}

/** Hash states of message-list prefixes, by the list's message objects. `State` is the hasher's. */
export class ConversationMemo<State> {
  readonly #entries = new WeakMap<object, Entry<State>>();
  readonly #rule = new RememberRule();

  /** The longest prefix of `items` whose state is remembered and still valid, if any. */
  resume(items: readonly unknown[]): Resume<State> | undefined {
    let candidates = 0;
    for (let last = items.length - 1; last >= 0 && candidates < MAX_CANDIDATES; last--) {
      const item = items[last];
      if (typeof item !== 'object' || item === null) continue;
      const entry = this.#entries.get(item);
      if (entry === undefined) continue;
      candidates++;
      if (entry.items.length === last + 1 && covers(entry, items)) {
        this.#rule.found();
        return { key: item, covered: last + 1, state: entry.state, snapshots: entry.snapshots, entry };
      }
      // Stale for this conversation (trimmed, a window slid, a message edited): it would only keep
      // the messages it covers alive.
      this.#entries.delete(item);
    }
    this.#rule.missed();
    return undefined;
  }

  /** Whether a list that resumed nothing should be remembered (see MISS_STREAK). */
  worthRemembering(): boolean {
    return this.#rule.worthRemembering();
  }

  /**
   * Remembers `state` as the state after `items[0..count)`, whose snapshots are `snapshots`, in
   * place of the entry the list resumed from (`replaces`). Nothing is remembered when the last
   * covered item is not an object (it could not key the entry).
   */
  remember(items: readonly unknown[], count: number, snapshots: readonly Snapshot[], state: State, replaces?: Resume<State>): void {
    const last = items[count - 1];
    if (count === 0 || typeof last !== 'object' || last === null) return;
    if (replaces !== undefined && replaces.key !== last) this.#entries.delete(replaces.key);
    this.#entries.set(last, { items: items.slice(0, count), snapshots, state });
  }
}

function covers<State>(entry: Entry<State>, items: readonly unknown[]): boolean {
  const { items: known, snapshots } = entry;
  for (let i = 0; i < known.length; i++) {
    if (items[i] !== known[i] || !matchesSnapshot(items[i], snapshots[i])) return false;
  }
  return true;
}

export { UNCHECKABLE };
export type { Snapshot };
