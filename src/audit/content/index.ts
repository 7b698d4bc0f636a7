/**
 * Encrypted content capture (opt-in, `LLM_AUDIT_CONTENT=encrypted`): the system instructions, input
 * and output of each call as an AES-256-GCM envelope under a per-tenant data key, with
 * crypto-shredding per tenant. docs/content-encryption.md describes formats, keys, rotation,
 * shredding and the threat model.
 */
export {
  CONTENT_ALG,
  CONTENT_MODES,
  ENVELOPE_PREFIX,
  contentCipherFromEnv,
  contentModeFromEnv,
  createContentCipher,
  defaultKeystorePath,
  keystorePathFrom,
  isContentEnvelope,
  oldKeyPathsFromEnv,
  parseEnvelope,
  type ContentCipher,
  type ContentCipherOptions,
  type ContentMode,
  type EnvelopeFields,
  type OpenContext,
  type SealContext,
} from './envelope';
export {
  contentPayload,
  embeddingsInput,
  jsonSafe,
  outputMessages,
  requestContent,
  type ContentPayload,
  type ConvertOptions,
  type GenAIInputMessage,
  type GenAIOutputMessage,
  type GenAIPart,
  type RequestContent,
} from './genai-messages';
export {
  ContentKeystore,
  DEFAULT_KEYSTORE_NAME,
  SHRED_LOG_NAME,
  normalizeTenant,
  shredTenant,
  type DekEntry,
  type KeystoreOptions,
  type ShredResult,
} from './keystore';
export {
  CONTENT_KEY_BYTES,
  contentKeyFingerprint,
  createContentMasterKey,
  loadContentMasterKey,
  masterKeyFromBytes,
  validateKeyId,
  type MasterKey,
} from './master-key';
export { CONTENT_ERROR_CODES, ContentError, contentExitCode, isContentError, type ContentErrorCode } from './errors';
