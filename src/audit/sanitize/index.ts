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
export { builtinWalker, readingWalk, sanitizeRequest, Walk, type RequestKind, type RequestWalker, type SanitizeLocationFinding, type SanitizeResult } from './messages';
