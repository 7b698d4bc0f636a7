// The conversation every configuration sends: deterministic (a seeded generator), so that every
// child of every configuration sends byte-for-byte the same request for a given size.

const WORDS = (
  'account audit balance budget capacity customer deadline delivery estimate forecast invoice ' +
  'ledger margin network order payment policy priority quarter quota release report request ' +
  'revenue review risk schedule service shipment status summary supplier target team ticket ' +
  'timeline total update vendor volume warehouse workflow'
).split(' ');

function generator(seed) {
  let state = seed >>> 0;
  return () => {
    // xorshift32: plenty for picking words.
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state;
  };
}

function sentence(next, length) {
  const words = [];
  let size = 0;
  while (size < length) {
    const word = WORDS[next() % WORDS.length];
    words.push(word);
    size += word.length + 1;
  }
  return words.join(' ').slice(0, Math.max(1, length)) + '.';
}

export const SYSTEM_PROMPT =
  'You are the finance assistant of Example Corp. Answer from the figures the user gives; say ' +
  'when a figure is missing rather than guessing. Keep answers short and cite the report section.';

/**
 * A conversation of about `bytes` bytes of JSON (system prompt included): alternating user and
 * assistant turns, starting and ending with a user turn, as both providers accept.
 * Returns the turns without the system prompt; each SDK adds it its own way.
 */
export function buildConversation(bytes) {
  const next = generator(0x5eed + bytes);
  const turns = Math.max(3, Math.min(401, Math.round(bytes / 1000) | 1));
  const count = turns % 2 === 1 ? turns : turns + 1; // odd: ends with a user turn
  const overhead = SYSTEM_PROMPT.length + 40; // JSON punctuation and the system turn
  const perTurn = Math.max(20, Math.floor((bytes - overhead) / count) - 32);
  const messages = [];
  for (let i = 0; i < count; i++) {
    messages.push({ role: i % 2 === 0 ? 'user' : 'assistant', content: sentence(next, perTurn) });
  }
  return messages;
}

/** The JSON size of what the hashes cover for an OpenAI chat request (system turn + turns). */
export function conversationBytes(messages) {
  return Buffer.byteLength(JSON.stringify([{ role: 'system', content: SYSTEM_PROMPT }, ...messages]));
}

export function sizeLabel(bytes) {
  if (bytes >= 1 << 20) return `${Math.round(bytes / (1 << 20))} MB`;
  if (bytes >= 1 << 10) return `${Math.round(bytes / (1 << 10))} KB`;
  return `${bytes} B`;
}
