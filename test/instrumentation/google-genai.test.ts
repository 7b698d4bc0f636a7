import { googleGenaiSuite } from './google-genai';

// @google/genai 2.32, the root's devDependency (the newest for Node 20).
googleGenaiSuite();
