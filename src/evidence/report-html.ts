/**
 * `llm-audit report <name> --format html`: the same rows as the table, JSON and CSV formats, with
 * a chart where people would rather look than read. The chart is drawn from the report's rows only,
 * so the picture and the table cannot disagree.
 */
import type { Cell, Report } from '../ledger/reports';
import { PACKAGE_VERSION } from '../version';
import type { ChartSpec } from './charts';
import { chartFigure, escapeHtml, htmlPage, htmlTable } from './html';

const num = (c: Cell | undefined): number | null => (typeof c === 'number' ? c : null);
const label = (c: Cell | undefined): string => (c === null || c === undefined ? '(none)' : String(c));

/** Users shown one by one in the cost chart; the rest are summed as "others". */
const COST_CHART_USERS = 8;

function costByUserChart(report: Report): ChartSpec {
  const days = [...new Set(report.rows.map((r) => String(r.day)))].sort();
  const perUser = new Map<string, number>();
  for (const r of report.rows) perUser.set(label(r.user_id), (perUser.get(label(r.user_id)) ?? 0) + (num(r.total_cost_usd) ?? 0));
  const top = [...perUser].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).slice(0, COST_CHART_USERS).map(([u]) => u);
  const series = [...top, ...(perUser.size > top.length ? ['others'] : [])].map((user) => ({
    name: user,
    type: 'bar' as const,
    stack: 'cost',
    data: days.map((day) => {
      const rows = report.rows.filter((r) => r.day === day && (user === 'others' ? !top.includes(label(r.user_id)) : label(r.user_id) === user));
      const priced = rows.map((r) => num(r.total_cost_usd)).filter((c): c is number => c !== null);
      return priced.length > 0 ? Math.round(priced.reduce((a, b) => a + b, 0) * 1e9) / 1e9 : null;
    }),
  }));
  return { title: 'Cost per day by user (USD)', categories: days, axes: ['USD'], series };
}

function anomaliesChart(report: Report): ChartSpec {
  if (report.columns[0] !== 'timestamp') {
    // Groups (--metric calls) or users (--summary): their calls in the window.
    const key = report.columns[0]!;
    const threshold = report.columns.includes('threshold') ? 'threshold' : 'calls_threshold';
    return {
      title: 'Calls in the window against their threshold',
      categories: report.rows.map((r) => label(r[key])),
      axes: ['calls'],
      series: [
        { name: 'calls', type: 'bar', data: report.rows.map((r) => num(r.window_calls)) },
        { name: 'threshold', type: 'line', data: report.rows.map((r) => num(r[threshold])) },
      ],
    };
  }
  const value = report.columns[4]!;
  const what = value === 'cost_usd' ? 'cost (USD)' : 'input tokens';
  return {
    title: `Flagged calls: ${what} against their threshold`,
    categories: report.rows.map((r) => `${String(r.timestamp).slice(5, 16)} ${label(r.user_id)}`),
    axes: [what],
    series: [
      { name: what, type: 'bar', data: report.rows.map((r) => num(r[value])) },
      { name: 'threshold', type: 'line', data: report.rows.map((r) => num(r.threshold)) },
    ],
  };
}

function errorRateChart(report: Report): ChartSpec {
  return {
    title: 'Requests and error rate per model',
    categories: report.rows.map((r) => label(r.model)),
    axes: ['requests', 'error rate %'],
    series: [
      { name: 'requests', type: 'bar', data: report.rows.map((r) => num(r.requests)) },
      { name: 'error rate %', type: 'line', axis: 1, data: report.rows.map((r) => (num(r.error_rate) === null ? null : Math.round(num(r.error_rate)! * 1000) / 10)) },
    ],
  };
}

function usageChart(report: Report): ChartSpec {
  const key = report.columns[0]!;
  return {
    title: `Calls and cost by ${key}`,
    categories: report.rows.map((r) => label(r[key])),
    axes: ['calls', 'USD'],
    series: [
      { name: 'calls', type: 'bar', data: report.rows.map((r) => num(r.calls)) },
      { name: 'cost (USD)', type: 'line', axis: 1, data: report.rows.map((r) => num(r.cost_usd)) },
    ],
  };
}

const CHARTS: Partial<Record<string, (report: Report) => ChartSpec>> = {
  'cost-by-user': costByUserChart,
  anomalies: anomaliesChart,
  'error-rate': errorRateChart,
  usage: usageChart,
};

export function renderReportHtml(name: string, report: Report, context: { ledger: string; generatedAt: string; command: string }): string {
  const chart = CHARTS[name];
  return htmlPage(
    `LLM audit report: ${name}`,
    `<h1>LLM audit report: ${escapeHtml(name)}</h1>
<p>Ledger <code>${escapeHtml(context.ledger)}</code> · generated ${escapeHtml(context.generatedAt)} by otel-llm-audit ${escapeHtml(PACKAGE_VERSION)}<br>
Command: <code>${escapeHtml(context.command)}</code></p>
${report.notes.length > 0 ? `<ul>${report.notes.map((n) => `<li>${escapeHtml(n)}</li>`).join('')}</ul>` : ''}
${chart && report.rows.length > 0 ? chartFigure(name, chart(report)) : ''}
${htmlTable(report.columns, report.rows.map((r) => report.columns.map((c) => r[c] ?? '')), `${report.rows.length} row${report.rows.length === 1 ? '' : 's'}`)}`,
  );
}
