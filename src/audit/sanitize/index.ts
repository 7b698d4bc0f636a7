export {
  BUILTIN_TYPES,
  createSanitizer,
  sanitizeModeFromEnv,
  type BuiltinType,
  type CustomPattern,
  type Finding,
  type SanitizeHook,
  type SanitizeMode,
  type Sanitizer,
  type SanitizerOptions,
} from './detectors';
export { sanitizeRequest, sanitizeWith, Walk, type RequestKind, type SanitizeLocationFinding, type SanitizeResult } from './messages';
