import { googleGenaiSuite } from './google-genai';

// @google/genai 3.x (test/sdk-versions/google-genai-3; the package declares Node >= 22, the CI's Node 24 leg).
googleGenaiSuite('google-genai-3');
