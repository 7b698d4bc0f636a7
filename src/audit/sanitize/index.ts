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
export { readingWalk, sanitizeRequest, type SanitizeLocationFinding, type SanitizeResult, type TextWalk } from './messages';
