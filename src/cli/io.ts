/** What a command needs from the process: output streams and the environment (tests pass fakes). */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { LedgerError } from '../ledger/errors';

export interface CliIo {
  /** Writes to standard output, honouring back-pressure. */
  out(text: string): Promise<void>;
  /** Writes one line to standard error. */
  err(line: string): void;
  env: NodeJS.ProcessEnv;
  cwd: string;
}

export function processIo(): CliIo {
  return {
    out: (text) =>
      new Promise<void>((resolve) => {
        if (process.stdout.write(text)) resolve();
        else process.stdout.once('drain', () => resolve());
      }),
    err: (line) => {
      process.stderr.write(line + '\n');
    },
    env: process.env,
    cwd: process.cwd(),
  };
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** node:util parseArgs with usage errors as LedgerError('LEDGER_USAGE'). */
export interface Parsed {
  values: Record<string, string | boolean | Array<string | boolean> | undefined>;
  positionals: string[];
}

export function parse(argv: string[], options: Options, usage: string, allowPositionals = 0): Parsed {
  let parsed: Parsed;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new LedgerError('LEDGER_USAGE', `${(error as Error).message.split('\n')[0]}\nusage: ${usage}`);
  }
  if (parsed.positionals.length > allowPositionals) {
    throw new LedgerError('LEDGER_USAGE', `unexpected argument ${JSON.stringify(parsed.positionals[allowPositionals])}\nusage: ${usage}`);
  }
  return parsed;
}

export function ledgerDir(flag: string | undefined, io: CliIo): string {
  return flag ?? (io.env.LLM_AUDIT_LEDGER_DIR?.trim() || './llm-audit-ledger');
}

/** Parses an ISO 8601 instant given on the command line. */
export function instant(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  const t = Date.parse(text);
  if (Number.isNaN(t)) throw new LedgerError('LEDGER_USAGE', `${flag} ${JSON.stringify(text)} is not an ISO 8601 date or time`);
  return t;
}

export function oneOf<T extends string>(value: string | undefined, allowed: readonly T[], flag: string, fallback: T): T {
  if (value === undefined) return fallback;
  if (!(allowed as readonly string[]).includes(value)) {
    throw new LedgerError('LEDGER_USAGE', `${flag} must be one of ${allowed.join(', ')}, got ${JSON.stringify(value)}`);
  }
  return value as T;
}

export function str(p: Parsed, name: string): string | undefined {
  const v = p.values[name];
  return typeof v === 'string' ? v : undefined;
}

export function strs(p: Parsed, name: string): string[] {
  const v = p.values[name];
  if (Array.isArray(v)) return v.filter((x): x is string => typeof x === 'string');
  return typeof v === 'string' ? [v] : [];
}

export function flag(p: Parsed, name: string): boolean {
  return p.values[name] === true;
}
