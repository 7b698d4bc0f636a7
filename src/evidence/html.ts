/**
 * report.html of an evidence bundle: one file, no script, no external resource (styles and SVG
 * charts inline), readable on screen and printed. Every value that comes from the ledger is escaped:
 * user ids and model names are whatever the application sent.
 */
import { PACKAGE_VERSION } from '../version';
import { renderChart, type ChartSpec } from './charts';
import type { EvidenceFacts, Totals } from './facts';
import { FRAMEWORK_TITLES, LIMITS, type Framework, type RequirementResult } from './frameworks';

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
export const escapeHtml = (value: unknown): string => String(value ?? '').replace(/[&<>"']/g, (c) => ESCAPES[c]!);

const usd = (n: number | null): string => (n === null ? 'unpriced' : `$${n.toFixed(n < 1 ? 6 : 2)}`);

export function htmlTable(columns: string[], rows: unknown[][], caption?: string): string {
  if (rows.length === 0) return `<p class="empty">${escapeHtml(caption ? `${caption}: none` : 'none')}</p>`;
  return (
    `<table>${caption ? `<caption>${escapeHtml(caption)}</caption>` : ''}<thead><tr>${columns.map((c) => `<th>${escapeHtml(c)}</th>`).join('')}</tr></thead><tbody>` +
    rows.map((r) => `<tr>${r.map((v) => `<td>${escapeHtml(v)}</td>`).join('')}</tr>`).join('') +
    '</tbody></table>'
  );
}

const totalsColumns = ['calls', 'errors', 'blocked', 'input tokens', 'output tokens', 'cost', 'unpriced'];
const totalsCells = (t: Totals): unknown[] => [t.calls, t.errors, t.blocked, t.input_tokens, t.output_tokens, usd(t.cost_usd), t.unpriced];

/** The charts of the report, with the id the tests (and a reader's bookmarks) use. */
export function chartSpecs(f: EvidenceFacts): Array<{ id: string; spec: ChartSpec }> {
  const days = f.by_day.map((d) => d.day);
  const topUsers = f.by_user.slice(0, 10);
  return [
    {
      id: 'calls-per-day',
      spec: {
        title: 'Calls and cost per day',
        categories: days,
        axes: ['calls', 'USD'],
        series: [
          { name: 'ok', type: 'bar', stack: 'calls', data: f.by_day.map((d) => d.calls - d.errors - d.blocked) },
          { name: 'errors', type: 'bar', stack: 'calls', data: f.by_day.map((d) => d.errors) },
          { name: 'blocked', type: 'bar', stack: 'calls', data: f.by_day.map((d) => d.blocked) },
          { name: 'cost (USD)', type: 'line', axis: 1, data: f.by_day.map((d) => d.cost_usd) },
        ],
      },
    },
    {
      id: 'calls-per-model',
      spec: {
        title: 'Calls per model (requested) and error rate',
        categories: f.by_model.map((m) => `${m.provider ?? '?'}/${m.model ?? '?'}`),
        axes: ['calls', 'error rate %'],
        series: [
          { name: 'calls', type: 'bar', data: f.by_model.map((m) => m.calls) },
          { name: 'error rate %', type: 'line', axis: 1, data: f.by_model.map((m) => (m.calls > 0 ? Math.round((1000 * m.errors) / m.calls) / 10 : null)) },
        ],
      },
    },
    {
      id: 'cost-per-user',
      spec: {
        title: `Cost per user (top ${topUsers.length})`,
        categories: topUsers.map((u) => u.user_id ?? '(no user)'),
        axes: ['USD'],
        series: [{ name: 'cost (USD)', type: 'bar', data: topUsers.map((u) => u.cost_usd) }],
      },
    },
  ];
}

/**
 * A whole page around `body`: inline styles only, and a Content-Security-Policy that forbids every
 * script and request, so that nothing in the data can make the page run or fetch anything.
 */
export function htmlPage(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>${escapeHtml(title)}</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1b1f24;max-width:60rem;margin:2rem auto;padding:0 1rem}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #d0d7de;padding-bottom:.2rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0 1rem}th,td{border:1px solid #d0d7de;padding:.25rem .45rem;text-align:left;vertical-align:top}
th{background:#f6f8fa}td:not(:first-child){font-variant-numeric:tabular-nums}caption{text-align:left;font-weight:600;padding:.3rem 0}
.status{font-weight:700;text-transform:uppercase;font-size:.8rem;padding:.05rem .35rem;border-radius:.2rem}
.shown{background:#dafbe1;color:#116329}.partly{background:#fff8c5;color:#7d4e00}.failed{background:#ffebe9;color:#a40e26}
.banner{padding:.6rem .8rem;border-radius:.3rem;margin:1rem 0}.banner.ok{background:#dafbe1}.banner.bad{background:#ffebe9}
.empty{color:#57606a;font-style:italic}figure{margin:1rem 0;break-inside:avoid}figure svg{max-width:100%;height:auto}
ul.evidence{margin:0;padding-left:1.1rem}code{font-size:.9em}
@media print{body{margin:0;max-width:none}h2{break-after:avoid}tr{break-inside:avoid}}
</style></head><body>
${body}
</body></html>
`;
}

/** A chart in its figure, or the note that says why it is missing. */
export function chartFigure(id: string, spec: ChartSpec): string {
  const svg = renderChart(spec);
  return `<figure class="chart" id="chart-${id}" data-chart="${id}">${svg ?? '<p class="empty">chart not rendered: the optional package echarts is not installed (npm install echarts)</p>'}</figure>`;
}

/** The verification banner: what was verified, and how the bundle is checked. */
function integrityBanner(f: EvidenceFacts, check: string): string {
  const v = f.ledger.verify;
  return `<div class="banner ${v.ok ? 'ok' : 'bad'}">${
    v.ok
      ? `Integrity: the whole ledger verified (${v.records} records, tree size ${v.tree_size}${f.ledger.signed_with_given_key ? `, ${v.signatures_verified} signature${v.signatures_verified === 1 ? '' : 's'} checked with the given public key` : ', signatures NOT checked: no public key was given'}).`
      : `Integrity: verification FAILED (${escapeHtml(v.code)}): ${escapeHtml(v.message)}`
  }<br>Newest checkpoint: ${
    f.ledger.checkpoint
      ? `tree size ${f.ledger.checkpoint.tree_size} at ${escapeHtml(f.ledger.checkpoint.timestamp)}, ${f.ledger.checkpoint.signed ? `signed by key ${escapeHtml(f.ledger.checkpoint.key_id)}` : 'NOT signed'}`
      : 'none'
  }. ${check}</div>`;
}

/** Totals, charts, per-user/tenant/model tables, blocks and errors, gaps, erasures and retention: what the evidence report and `report summary` share. */
export function activitySections(f: EvidenceFacts): string {
  return `<h2>Activity</h2>
${htmlTable(['', ...totalsColumns], [['all calls', ...totalsCells(f.totals)]])}
${chartSpecs(f).map(({ id, spec }) => chartFigure(id, spec)).join('\n')}
${htmlTable(['user', ...totalsColumns], f.by_user.map((u) => [u.user_id ?? '(no user)', ...totalsCells(u)]), 'By user (highest cost first)')}
${htmlTable(['tenant', ...totalsColumns], f.by_tenant.map((t) => [t.tenant_id ?? '(no tenant)', ...totalsCells(t)]), 'By tenant')}
${htmlTable(['provider', 'model (requested)', ...totalsColumns], f.by_model.map((m) => [m.provider ?? '?', m.model ?? '?', ...totalsCells(m)]), 'By provider and model')}

<h2>Blocks, guardrails, sensitive data, errors</h2>
${htmlTable(['rule', 'action', 'calls'], f.guardrails.map((g) => [g.rule, g.action, g.count]), 'Guardrail decisions')}
<p>Sensitive-data findings: ${f.sanitization.findings} in ${f.sanitization.calls_with_findings} calls.</p>
${htmlTable(['error type', 'calls'], f.error_types.map((e) => [e.error_type, e.count]), 'Error types')}

<h2>Gaps, erasures, retention</h2>
${htmlTable(['written', 'records lost', 'first failure', 'last failure'], f.gaps.map((g) => [g.timestamp, g.lost, g.first_failure, g.last_failure]), 'Audit records a writer could not write (ledger.gap)')}
${htmlTable(['when', 'tenant'], f.erasures.map((e) => [e.timestamp, e.tenant_id ?? '(none)']), 'Erasures (content.shred)')}
${htmlTable(['applied', 'policy', 'records removed', 'signed'], f.retention.map((t) => [t.applied_at, JSON.stringify(t.policy), t.removed_records, t.signed ? 'yes' : 'NO']), 'Retention runs (tombstones)')}`;
}

/** The heading lines every page starts with: what, which period, which ledger. */
function heading(title: string, subtitle: string, f: EvidenceFacts, generatedAt: string): string {
  return `<h1>${escapeHtml(title)}</h1>
<p>${escapeHtml(subtitle)}<br>
Period: <b>${escapeHtml(f.period.from)}</b> to <b>${escapeHtml(f.period.to)}</b> (end excluded) · generated ${escapeHtml(generatedAt)} by otel-llm-audit ${escapeHtml(PACKAGE_VERSION)}<br>
Ledger: <code>${escapeHtml(f.ledger.name)}</code>, id <code>${escapeHtml(f.ledger.ledger_id ?? '(none)')}</code></p>`;
}

export function renderEvidenceHtml(framework: Framework, facts: EvidenceFacts, requirements: RequirementResult[], generatedAt: string): string {
  const f = facts;
  const status = (s: string): string => `<span class="status ${s}">${s}</span>`;
  const title = `LLM audit evidence: ${FRAMEWORK_TITLES[framework]}, ${f.period.from.slice(0, 10)} to ${f.period.to.slice(0, 10)}`;
  return htmlPage(
    title,
    `${heading('LLM audit evidence', FRAMEWORK_TITLES[framework], f, generatedAt)}
${integrityBanner(f, "The bundle's manifest, checkpoint and proofs are checked with <code>llm-audit evidence verify DIR --public-key KEY</code>.")}

<h2>Requirements</h2>
<table><thead><tr><th>provision</th><th>what is asked</th><th>status</th><th>what the ledger shows</th></tr></thead><tbody>
${requirements.map((r) => `<tr id="req-${escapeHtml(r.id)}"><td>${escapeHtml(r.cite)}</td><td>${escapeHtml(r.title)}</td><td>${status(r.status)}</td><td><ul class="evidence">${r.evidence.map((e) => `<li>${escapeHtml(e)}</li>`).join('')}</ul></td></tr>`).join('\n')}
</tbody></table>

${activitySections(f)}

<h2>What this ledger cannot show</h2>
<ul>${LIMITS.map((l) => `<li>${escapeHtml(l)}</li>`).join('')}</ul>`,
  );
}

/** `llm-audit report summary --format html`: the activity of a period, with the ledger's verification. */
export function renderSummaryHtml(facts: EvidenceFacts, generatedAt: string): string {
  return htmlPage(
    `LLM usage summary, ${facts.period.from.slice(0, 10)} to ${facts.period.to.slice(0, 10)}`,
    `${heading('LLM usage summary', 'What the audit ledger records for the period', facts, generatedAt)}
${integrityBanner(facts, 'For an auditor, <code>llm-audit evidence</code> adds the requirements, signed proofs and a manifest.')}
${activitySections(facts)}`,
  );
}
