// CommonJS app that loads the SDK with a dynamic import (the ESM build of openai).
const { threeCalls, printAnswers, fail } = require('./calls.cjs');

import('openai').then((mod) => threeCalls(mod.default)).then(printAnswers, fail);
