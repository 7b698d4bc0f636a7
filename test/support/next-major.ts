import { cpSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './harness';

/**
 * A fake "next major" of openai: the root's real package copied to `<app>/node_modules/openai` with
 * its package.json version set to `version`, its client.js source passed through `edit` (to take
 * away part of the shape the patch needs). Returns `<app>`, to resolve `openai` from. The CommonJS
 * build only (no types, maps, ESM build or sources): what require() loads.
 */
export function fakeOpenaiMajor(app: string, version: string, edit: (client: string) => string = (s) => s): string {
  const pkg = join(app, 'node_modules', 'openai');
  const source = realpathSync(join(repoRoot, 'node_modules', 'openai'));
  cpSync(source, pkg, { recursive: true, filter: (path) => !/(\.map|\.d\.ts|\.d\.mts|\.mjs)$/.test(path) && path !== join(source, 'src') });
  const manifest = JSON.parse(readFileSync(join(pkg, 'package.json'), 'utf8'));
  writeFileSync(join(pkg, 'package.json'), JSON.stringify({ ...manifest, version }));
  const client = readFileSync(join(pkg, 'client.js'), 'utf8');
  writeFileSync(join(pkg, 'client.js'), edit(client));
  return app;
}

/** Takes the static `OpenAI.Chat` class away, through which the patch reaches `chat.completions.create`. */
export function withoutChatClass(client: string): string {
  const edited = client.replace('OpenAI.Chat = chat_1.Chat;', '');
  if (edited === client) throw new Error('fakeOpenaiMajor: client.js no longer assigns OpenAI.Chat; update withoutChatClass');
  return edited;
}
