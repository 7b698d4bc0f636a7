// The work every deployment-matrix app does: three openai chat calls against the fake provider at
// FAKE_PROVIDER_URL, one model name per call (deploy-model-1..3) so that the test can tell each call
// apart in the audit trail. `wrap` lets an app hand its client to auditClient() first.
function client(OpenAI, wrap = (c) => c) {
  return wrap(new OpenAI({ apiKey: 'sk-deploy-secret-key', baseURL: `${process.env.FAKE_PROVIDER_URL}/v1`, maxRetries: 0 }));
}

async function oneCall(openai, n) {
  const answer = await openai.chat.completions.create({ model: `deploy-model-${n}`, messages: [{ role: 'user', content: `deploy call ${n}` }] });
  return answer.choices[0].message.content;
}

async function threeCalls(OpenAI, wrap) {
  const openai = client(OpenAI, wrap);
  const out = [];
  for (const n of [1, 2, 3]) out.push(await oneCall(openai, n));
  return out;
}

/** The line the test reads: the app's answers. */
function printAnswers(out) {
  process.stdout.write(`ANSWERS ${JSON.stringify(out)}\n`);
}

function fail(error) {
  process.stderr.write(`app failed: ${error && error.stack}\n`);
  process.exitCode = 1;
}

module.exports = { client, oneCall, threeCalls, printAnswers, fail };
