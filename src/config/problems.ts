import { AuditError } from '../errors';

/** The fix printed under every CONFIG_INVALID. */
export const CONFIG_FIX =
  'correct the variables named above (README "Configuration" lists each with its accepted values); `llm-audit config check` checks a configuration without starting an app';

/** Collects the problems of one reading; each check runs even when an earlier one failed. */
export class Problems {
  readonly list: string[] = [];
  check<T>(read: () => T): T | undefined {
    try {
      return read();
    } catch (error) {
      // Older parsers prefix their message with the package name; the renderer adds it once.
      this.list.push((error instanceof Error ? error.message : String(error)).replace(/^otel-llm-audit: /, ''));
      return undefined;
    }
  }
  throwIfAny(): void {
    if (this.list.length === 0) return;
    const message =
      this.list.length === 1 ? this.list[0]! : `${this.list.length} problems in the configuration:\n${this.list.map((p) => `  - ${p}`).join('\n')}`;
    throw new AuditError('CONFIG_INVALID', message, { fix: CONFIG_FIX });
  }
}

