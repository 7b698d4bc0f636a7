// `--transport replay`: the SDK's `fetch` answers from a recording of the fake provider's own
// response instead of a socket. Each child records, through the real HTTP request to the fake
// provider, one answer per call shape (plain, stream) before it warms up, then replays it for every
// further call: the same status, headers and body bytes, in the same chunks as they arrived (an SSE
// stream keeps its chunking). What is left out is the socket and HTTP client work, which is the
// same for every configuration and is where most of the run-to-run noise of a loopback run comes
// from; what each instrumentation does around the call is all still there.

/**
 * A fetch for the SDK client. `recordingKey()` names the call being made (its shape); while no
 * recording exists for it, the request goes to the network through `networkFetch` and its answer is
 * recorded, after that it is replayed.
 */
export function replayingFetch(recordingKey, networkFetch = globalThis.fetch) {
  const recordings = new Map();
  return async function fetch(url, init) {
    const key = recordingKey();
    let recording = recordings.get(key);
    if (recording === undefined) {
      const response = await networkFetch(url, init);
      const chunks = [];
      if (response.body) {
        const reader = response.body.getReader();
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          chunks.push(value);
        }
      }
      recording = { status: response.status, statusText: response.statusText, headers: [...response.headers], chunks };
      if (response.ok) recordings.set(key, recording);
    }
    return replay(recording, init?.signal);
  };
}

function replay(recording, signal) {
  let next = 0;
  const body = new ReadableStream({
    pull(controller) {
      if (signal?.aborted) {
        controller.error(signal.reason);
      } else if (next < recording.chunks.length) {
        controller.enqueue(recording.chunks[next++]);
      } else {
        controller.close();
      }
    },
  });
  return new Response(body, { status: recording.status, statusText: recording.statusText, headers: recording.headers });
}
