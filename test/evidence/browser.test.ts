/**
 * The evidence report as a person opens it: Debian's chromium (installed by .ci/run; no browser
 * download) driven by playwright-core, the file opened from disk. A screenshot of each run is kept
 * in .cache/artifacts/ for a reviewer.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildEvidence } from '../../src/evidence/bundle';
import { runCli } from '../../src/cli/main';
import { FileLedgerSource } from '../../src/ledger/file/ledger';
import { tempDir } from '../ledger/helpers';
import { repoRoot } from '../support/processes';
import { EXPECTED, FROM, TO, fileLedger, keys } from './data';

const CHROMIUM = process.env.LLM_AUDIT_TEST_CHROMIUM ?? '/usr/bin/chromium';
const artifacts = join(repoRoot, '.cache', 'artifacts');

describe('report.html in a real browser', () => {
  let browser: Browser;
  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install Debian's chromium package (apt-get install chromium; .ci/run does) or set LLM_AUDIT_TEST_CHROMIUM`);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  });
  afterAll(async () => browser?.close());

  it('opens from disk with no console error and no network request; the charts have their marks', async () => {
    const key = keys();
    const dir = tempDir();
    await fileLedger(dir, key.privateKey);
    const out = tempDir('evidence-html-');
    await buildEvidence(new FileLedgerSource(dir), { framework: 'gdpr', from: Date.parse(FROM), to: Date.parse(TO), out, signingKey: key.privateKey, verify: { publicKey: key.publicKey } });
    const url = pathToFileURL(join(out, 'report.html')).href;

    const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    const problems: string[] = [];
    const requests: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(`${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    page.on('request', (r) => requests.push(r.url()));
    await page.goto(url, { waitUntil: 'load' });

    expect(problems).toEqual([]);
    expect(requests).toEqual([url]);
    // The hostile user id was shown as text, not run.
    expect(await page.title()).toMatch(/^LLM audit evidence: GDPR/);
    expect(await page.locator('text=<img src=x').count()).toBeGreaterThan(0);

    // One mark per data point that has a value: ECharts tags them with their series and index.
    const marks = (chart: string, series: number) => page.locator(`#chart-${chart} [ecmeta_series_index="${series}"][ecmeta_ssr_type="chart"]`).count();
    const usersWithCost = EXPECTED.by_user.filter((u) => u.cost_usd !== null).length;
    expect(await marks('cost-per-user', 0)).toBe(usersWithCost);
    expect(await marks('calls-per-model', 0)).toBe(EXPECTED.by_model.length);
    expect(await marks('calls-per-day', 0)).toBe(EXPECTED.by_day.length);
    // Every bar is named, however long another label is.
    for (const user of ['bob', 'alice']) expect(await page.locator(`#chart-cost-per-user text:text-is("${user}")`).count(), user).toBe(1);
    // The requirement rows and their verdicts are there.
    expect(await page.locator('#req-art30 .status').textContent()).toBe('shown');
    expect(await page.locator('#req-art17 li').first().textContent()).toContain('tenant globex');

    mkdirSync(artifacts, { recursive: true });
    await page.screenshot({ path: join(artifacts, 'evidence-report.png'), fullPage: true });
    // The first screen (the README's picture: docs/images/evidence-report.png is a copy of one).
    await page.screenshot({ path: join(artifacts, 'evidence-report-top.png'), clip: { x: 0, y: 0, width: 1100, height: 1250 } });
    await page.emulateMedia({ media: 'print' });
    await page.screenshot({ path: join(artifacts, 'evidence-report-print.png'), fullPage: true });
    expect(existsSync(join(artifacts, 'evidence-report.png'))).toBe(true);
  });

  it('report --format html pages open clean, with one mark per group', async () => {
    const key = keys();
    const dir = tempDir();
    await fileLedger(dir, key.privateKey);
    const out = tempDir('report-html-');
    const pages: Record<string, string[]> = {
      'cost-by-user': ['--from', FROM, '--to', TO],
      'error-rate': ['--now', TO, '--hours', '96'],
      usage: ['--by', 'model', '--from', FROM, '--to', TO],
      summary: ['--from', FROM, '--to', TO],
    };
    for (const [name, args] of Object.entries(pages)) {
      const file = join(out, `${name}.html`);
      const code = await runCli(['report', name, ...args, '--format', 'html', '--out', file, '--ledger', dir], { out: async () => {}, err: () => {}, env: {}, cwd: process.cwd() });
      expect(code, name).toBe(0);
      const page = await browser.newPage();
      const problems: string[] = [];
      const requests: string[] = [];
      page.on('console', (m) => problems.push(`${m.type()}: ${m.text()}`));
      page.on('pageerror', (e) => problems.push(e.message));
      page.on('request', (r) => requests.push(r.url()));
      const url = pathToFileURL(file).href;
      await page.goto(url, { waitUntil: 'load' });
      expect(problems, name).toEqual([]);
      expect(requests, name).toEqual([url]);
      const marks = (chart: string, series: number) => page.locator(`#chart-${chart} [ecmeta_series_index="${series}"][ecmeta_ssr_type="chart"]`).count();
      if (name === 'error-rate' || name === 'usage') expect(await marks(name, 0), name).toBe(EXPECTED.by_model.length);
      // cost-by-user: one stacked series per user; bob's (the largest) has a bar on each day he was priced.
      if (name === 'cost-by-user') expect(await marks(name, 0), name).toBe(1);
      if (name === 'summary') expect(await marks('calls-per-day', 0), name).toBe(EXPECTED.by_day.length);
      await page.screenshot({ path: join(artifacts, `report-${name}.png`), fullPage: true });
      await page.close();
    }
  });
});
