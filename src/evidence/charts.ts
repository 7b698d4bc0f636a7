/**
 * Charts as inline SVG, rendered by Apache ECharts' server-side SVG renderer (no browser, no DOM,
 * nothing fetched when the page is opened). ECharts is an optional peer dependency: without it the
 * reports keep every table and say where the charts would be.
 */
export interface ChartSpec {
  title: string;
  /** Category labels (x axis). */
  categories: string[];
  series: Array<{ name: string; type: 'bar' | 'line'; data: Array<number | null>; stack?: string; axis?: 0 | 1 }>;
  /** Axis names: the left one, and a right one when a series uses axis 1. */
  axes: [string] | [string, string];
}

let echarts: any;

/** True when ECharts can be loaded. */
export function chartsAvailable(): boolean {
  if (echarts === undefined) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      echarts = require('echarts');
    } catch {
      echarts = null;
    }
  }
  return echarts !== null;
}

/** One chart as an SVG string, or undefined without ECharts. */
export function renderChart(spec: ChartSpec, size = { width: 760, height: 300 }): string | undefined {
  if (!chartsAvailable()) return undefined;
  const chart = echarts.init(null, null, { renderer: 'svg', ssr: true, ...size });
  try {
    chart.setOption({
      animation: false,
      title: { text: spec.title, left: 'center', textStyle: { fontSize: 14 } },
      tooltip: { show: false },
      legend: { bottom: 0, show: spec.series.length > 1 },
      grid: { left: 60, right: spec.axes.length > 1 ? 60 : 20, top: 40, bottom: spec.series.length > 1 ? 60 : 40 },
      // Every label shown, long ones cut (user ids can be anything): a hidden label would leave a bar unnamed.
      xAxis: { type: 'category', data: spec.categories, axisLabel: { interval: 0, width: Math.max(40, Math.floor(680 / Math.max(1, spec.categories.length)) - 8), overflow: 'truncate' } },
      yAxis: spec.axes.map((name) => ({ type: 'value', name })),
      series: spec.series.map((s) => ({ name: s.name, type: s.type, data: s.data, yAxisIndex: s.axis ?? 0, ...(s.stack ? { stack: s.stack } : {}) })),
    });
    return chart.renderToSVGString();
  } finally {
    chart.dispose();
  }
}
