import { repoRoot } from '../support/harness';
import { vercelAiSuite } from './vercel-ai-suite';

// ai 6.0.333 with @ai-sdk/openai 3.0.141 and @ai-sdk/anthropic 3.0.140 (the root's devDependencies).
vercelAiSuite(repoRoot, 6);
