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
    parsed = parseArgs({ args: negativeValues(argv, options), options, allowPositionals: true, strict: true });
  } catch (error) {
    const e = error as Error & { code?: string };
    // Node's own text suggests `-- "--x"` with a quote it never closes; say it plainly.
    const unknown = e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' ? /'(-[^']*)'/.exec(e.message)?.[1] : undefined;
    const message = unknown !== undefined ? `unknown option ${unknown}` : e.message.split('\n')[0];
    throw new LedgerError('LEDGER_USAGE', `${message}\nusage: ${usage}\n(llm-audit <command> --help lists the options)`);
  }
  if (parsed.positionals.length > allowPositionals) {
    throw new LedgerError('LEDGER_USAGE', `unexpected argument ${JSON.stringify(parsed.positionals[allowPositionals])}\nusage: ${usage}`);
  }
  return parsed;
}

/**
 * `--limit -1` as `--limit=-1`: parseArgs takes a value that starts with "-" for an option and
 * calls it ambiguous, so the option's own check (a positive integer...) never got to say what is
 * wrong. Only numbers are joined; `--ledger --postgres` still fails as a missing value.
 */
function negativeValues(argv: string[], options: Options): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const next = argv[i + 1];
    const name = arg.startsWith('--') ? arg.slice(2) : undefined;
    if (name !== undefined && options[name]?.type === 'string' && next !== undefined && /^-\d/.test(next)) {
      out.push(`${arg}=${next}`);
      i++;
    } else out.push(arg);
  }
  return out;
}

export function ledgerDir(flag: string | undefined, io: CliIo): string {
  return flag ?? (io.env.LLM_AUDIT_LEDGER_DIR?.trim() || './llm-audit-ledger');
}

/**
 * Parses an ISO 8601 instant given on the command line. Date.parse rolls a day the month does not
 * have over into the next month (2026-02-30 is March 2), so the calendar date is checked too.
 */
export function instant(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  const t = Date.parse(text);
  if (Number.isNaN(t)) throw new LedgerError('LEDGER_USAGE', `${flag} ${JSON.stringify(text)} is not an ISO 8601 date or time`);
  const ymd = /^(\d{4})-(\d{2})-(\d{2})/.exec(text);
  if (ymd) {
    const [year, month, day] = ymd.slice(1).map(Number) as [number, number, number];
    const d = new Date(Date.UTC(year, month - 1, day));
    if (d.getUTCFullYear() !== year || d.getUTCMonth() !== month - 1 || d.getUTCDate() !== day) {
      throw new LedgerError('LEDGER_USAGE', `${flag} ${JSON.stringify(text)} is not a date: ${ymd[0]} does not exist`);
    }
  }
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
