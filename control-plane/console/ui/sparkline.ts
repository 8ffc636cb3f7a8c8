/**
 * A small inline SVG line chart of push latency over time (p50 and p99), drawn from the overview's
 * samples. No library: two polylines scaled to the largest value, with a text summary for screen readers.
 */
import { svg } from './dom.js';

const WIDTH = 240;
const HEIGHT = 48;

/** One point in time: p50 and p99 in milliseconds. */
export interface LatencyPoint {
  readonly p50: number;
  readonly p99: number;
}

function points(values: readonly number[], max: number): string {
  const step = values.length > 1 ? WIDTH / (values.length - 1) : WIDTH;
  return values
    .map((v, i) => `${(i * step).toFixed(1)},${(HEIGHT - 2 - (v / max) * (HEIGHT - 4)).toFixed(1)}`)
    .join(' ');
}

/** The chart of `series` (oldest first), labelled `label` for assistive technology. */
export function latencySparkline(series: readonly LatencyPoint[], label: string): SVGElement {
  const max = Math.max(1, ...series.map((p) => p.p99), ...series.map((p) => p.p50));
  const title = svg('title', {});
  title.textContent = label;
  const chart = svg(
    'svg',
    { class: 'sparkline', viewBox: `0 0 ${WIDTH} ${HEIGHT}`, width: WIDTH, height: HEIGHT, role: 'img' },
    title,
    svg('line', { x1: 0, y1: HEIGHT - 1, x2: WIDTH, y2: HEIGHT - 1, class: 'axis' }),
  );
  if (series.length > 0) {
    chart.appendChild(
      svg('polyline', {
        points: points(
          series.map((p) => p.p99),
          max,
        ),
        class: 'p99',
      }),
    );
    chart.appendChild(
      svg('polyline', {
        points: points(
          series.map((p) => p.p50),
          max,
        ),
        class: 'p50',
      }),
    );
  }
  chart.setAttribute('aria-label', label);
  return chart;
}
