import { sdkFixture } from '../support/node24';
import { vercelAiSuite } from './vercel-ai-suite';

// ai 5.0.277 with @ai-sdk/openai 2.0.131 and @ai-sdk/anthropic 2.0.112 (LanguageModelV2 models):
// test/sdk-versions/ai-5.
vercelAiSuite(sdkFixture('ai-5'), 5);
