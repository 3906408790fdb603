// The charts of one ticker on the /index page, drawn by uPlot (vendored: uPlot.SOURCE.txt):
// share bullish with its 95% band (and the corrected share with its band, and the authors' tags
// where there are any), the messages per period as bars, and the daily close. Every number comes
// from GET /v1/index as it is: nothing here computes a statistic.
/* global uPlot */

const BULL = "#1f77b4", ADJ = "#9467bd", TAG = "#ff7f0e", VOLUME = "#7f7f7f", PRICE = "#2ca02c";
const SHARE_HEIGHT = 230, VOLUME_HEIGHT = 130, CLOSE_HEIGHT = 150;

const number = (v, digits) => (v == null ? "–" : v.toFixed(digits));
const fixed = (digits) => (u, v) => number(v, digits);

// A share's line; its legend shows the value at the cursor with its band [low, high].
function line(label, stroke, band, extra = {}) {
  const value = (u, v, s, i) => (v == null || !band ? number(v, 3) : `${number(v, 3)} [${number(band[0][i], 3)}, ${number(band[1][i], 3)}]`);
  return { label, stroke, width: 1.6, points: { show: true, size: 4 }, value, ...extra };
}

function edge(label, stroke) {  // a band's edge: faint, the band's fill between two of them; not in the legend
  return { label, stroke, width: 1, alpha: 0.35, points: { show: false }, band: true };
}

function base(width, height, frame, yLabel) {
  return {
    width,
    height,
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), frame.timeZone),
    cursor: { sync: { key: frame.syncKey } },
    scales: { x: { time: true, range: () => frame.span } },
    series: [{ label: "period", value: frame.dayOnly ? "{YYYY}-{MM}-{DD}" : "{YYYY}-{MM}-{DD} {HH}:{mm}" }],
    axes: [{}, { label: yLabel, size: 56, space: 20 }],
    legend: { show: true, live: true },
  };
}

// frame: {x: seconds per row, span: [lo, hi], timeZone, dayOnly, syncKey}; rows: the API's rows of one ticker.
export function shareChart(el, width, frame, rows, show) {
  const column = (name) => rows.map((r) => r[name]);
  const opts = base(width, SHARE_HEIGHT, frame, "share bullish");
  const wilson = [column("ci_lo"), column("ci_hi")];
  opts.series.push(edge("95% low", BULL), edge("95% high", BULL), line("share bullish (95%)", BULL, wilson));
  const data = [frame.x, ...wilson, column("share_bull")];
  opts.bands = [{ series: [2, 1], fill: "rgba(31, 119, 180, 0.16)" }];
  if (show.corrected) {
    const band = [column("adj_lo"), column("adj_hi")];
    opts.series.push(edge("corrected low", ADJ), edge("corrected high", ADJ), line("corrected (95%)", ADJ, band));
    data.push(...band, column("share_bull_adj"));
    opts.bands.push({ series: [5, 4], fill: "rgba(148, 103, 189, 0.14)" });
  }
  if (show.tags) {
    opts.series.push(line("authors' tags", TAG, null, { width: 1.2, dash: [6, 4], points: { show: false } }));
    data.push(column("share_tagged_bull"));
  }
  opts.scales.y = { range: () => [0, 1] };
  const chart = new uPlot(opts, data, el);
  chart.root.querySelectorAll(".u-legend .u-series").forEach((row, i) => {
    if (opts.series[i].band) row.style.display = "none";  // band edges: their values are in their share's
  });
  return chart;
}

export function volumeChart(el, width, frame, rows) {
  const opts = base(width, VOLUME_HEIGHT, frame, "messages");
  const bars = uPlot.paths.bars({ size: [0.8, 40] });
  opts.series.push({ label: "messages", stroke: VOLUME, fill: VOLUME, width: 0, paths: bars, points: { show: false } });
  return new uPlot(opts, [frame.x, rows.map((r) => r.n_msgs)], el);
}

// prices: the API's closes of this ticker, [{date, close}], dated at UTC midnight like daily rows.
export function closeChart(el, width, frame, prices) {
  const x = prices.map((p) => Date.parse(p.date + "T00:00:00Z") / 1000);
  const opts = base(width, CLOSE_HEIGHT, { ...frame, timeZone: "UTC", dayOnly: true }, "close");
  opts.series.push({ label: "close", stroke: PRICE, width: 1.4, value: fixed(2) });
  return new uPlot(opts, [x, prices.map((p) => p.close)], el);
}
