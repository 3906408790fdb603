// The /index page: pick tickers, a period and dates; the page asks GET /v1/index, as any client
// would, and shows per ticker its charts (index-charts.js) and the numbers of its rows as the API
// gave them. The query is kept in the address (/index?ticker=TSLA,AAPL&freq=1W), so a view can be
// linked; without one the ticker with the most messages is shown.
import { el, fetchJSON } from "/static/dom.js";
import { closeChart, shareChart, volumeChart } from "/static/index-charts.js";

const form = document.getElementById("query");
const tickerSelect = document.getElementById("tickers");
const freqSelect = document.getElementById("freq");
const startInput = document.getElementById("start");
const endInput = document.getElementById("end");
const button = document.getElementById("show");
const statusLine = document.getElementById("status");
const note = document.getElementById("note");
const charts = document.getElementById("charts");

const FREQ_WORDS = { "30min": "30 minutes", "1h": "hourly", "1D": "daily", "1W": "weekly" };
const PERIODS = { "30min": "half hours", "1h": "hours", "1D": "sessions", "1W": "weeks" };
let indexInfo = { note: null };  // GET /v1/index/info, once

const share = (v) => (v == null ? "–" : v.toFixed(3));
const count = (v) => (v == null ? "–" : v.toLocaleString("en-US"));

// Where a period sits on the time axis: its session date (NYSE days and weeks) or its start.
function periodSeconds(row) {
  if (row.calendar === "nyse" && (row.session === "day" || row.session === "week")) {
    return Date.parse(row.session_date + "T00:00:00Z") / 1000;
  }
  return Date.parse(row.period_start.replace(" ", "T")) / 1000;
}

const periodLabel = (row) => (row.session_date && (row.session === "day" || row.session === "week")
  ? row.session_date : row.period_start.slice(0, 16));

// The columns of the numbers table: [column, heading, format]; the corrected share where the rows have it.
function tableColumns(show) {
  const columns = [["n_msgs", "messages", count], ["share_bull", "share bullish", share],
    ["ci_lo", "95% low", share], ["ci_hi", "95% high", share]];
  if (show.corrected) {
    columns.push(["share_bull_adj", "corrected", share], ["adj_lo", "95% low", share], ["adj_hi", "95% high", share]);
  }
  if (show.tags) columns.push(["share_tagged_bull", "authors' tags", share]);
  return columns;
}

function numbersTable(rows, show) {
  const columns = tableColumns(show);
  const table = el("table", undefined, "numbers");
  const head = el("tr");
  head.appendChild(el("th", "period"));
  for (const [, heading] of columns) head.appendChild(el("th", heading));
  table.appendChild(el("thead")).appendChild(head);
  const body = table.appendChild(el("tbody"));
  rows.forEach((row, i) => {
    const tr = body.appendChild(el("tr"));
    tr.dataset.row = String(i);
    tr.appendChild(el("td", periodLabel(row), "period"));
    for (const [name, , format] of columns) {
      const td = tr.appendChild(el("td", format(row[name]), "value"));
      td.dataset.column = name;
    }
  });
  const details = el("details", undefined, "numbers");
  details.appendChild(el("summary", `Numbers (${rows.length} rows)`));
  details.appendChild(table);
  return details;
}

// The last period with messages, in words: what a reader looks for first.
function latest(rows, show) {
  const last = [...rows].reverse().find((r) => r.n_msgs > 0);
  const line = el("p", undefined, "latest");
  if (!last) return line;
  const part = (text, name, format) => {
    line.appendChild(document.createTextNode(text));
    const span = line.appendChild(el("span", format(last[name]), "value"));
    span.dataset.column = name;
  };
  line.appendChild(document.createTextNode(`Latest, ${periodLabel(last)}: `));
  part("", "n_msgs", count);
  part(" messages, share bullish ", "share_bull", share);
  part(" [", "ci_lo", share);
  part(", ", "ci_hi", share);
  if (show.corrected) {
    part("], corrected ", "share_bull_adj", share);
    part(" [", "adj_lo", share);
    part(", ", "adj_hi", share);
  }
  line.appendChild(document.createTextNode("]"));
  return line;
}

function tickerBlock(ticker, rows, prices, reply, show) {
  const block = el("article", undefined, "ticker");
  block.dataset.ticker = ticker;
  const total = rows.reduce((sum, r) => sum + r.n_msgs, 0);
  const calendar = rows.length && rows[0].calendar === "24x7" ? "24x7 UTC" : "NYSE sessions";
  const heading = block.appendChild(el("h2", `$${ticker} `));
  heading.appendChild(el("span", `${count(total)} messages · ${rows.length} ${PERIODS[reply.freq]} · ${calendar}`, "meta"));
  if (!rows.length) {
    block.appendChild(el("p", `no rows for ${ticker} in these dates`, "muted"));
    return { block, draw: () => ({}) };
  }
  block.appendChild(latest(rows, show));
  const shareBox = block.appendChild(el("div", undefined, "chart share"));
  const volumeBox = block.appendChild(el("div", undefined, "chart volume"));
  const closeBox = prices === null ? null : block.appendChild(el("div", undefined, "chart close"));
  if (prices !== null && !prices.length) closeBox.appendChild(el("p", `no prices for ${ticker} in these dates`, "muted"));
  block.appendChild(numbersTable(rows, show));
  const x = rows.map(periodSeconds);
  const priceX = (prices || []).map((p) => Date.parse(p.date + "T00:00:00Z") / 1000);
  const span = [Math.min(...x, ...priceX), Math.max(...x, ...priceX)];
  const nyseDays = rows[0].calendar === "nyse" && (reply.freq === "1D" || reply.freq === "1W");
  const timeZone = nyseDays || rows[0].calendar === "24x7" ? "UTC" : "America/New_York";
  const frame = { x, span, timeZone, dayOnly: nyseDays, syncKey: `ticker-${ticker}` };
  // Drawn once the block is in the page (uPlot measures its box); kept on the block for scripts and tests.
  const draw = () => {
    const width = Math.max(320, shareBox.clientWidth);
    block.charts = { share: shareChart(shareBox, width, frame, rows, show), volume: volumeChart(volumeBox, width, frame, rows) };
    if (prices && prices.length) block.charts.close = closeChart(closeBox, width, frame, prices);
  };
  return { block, draw };
}

function render(reply, query) {
  const show = {
    corrected: reply.columns.includes("share_bull_adj"),
    tags: reply.rows.some((r) => r.n_tagged_bull + r.n_tagged_bear > 0),
  };
  note.hidden = show.corrected || !indexInfo.note;
  note.textContent = show.corrected ? "" : indexInfo.note || "";
  const blocks = reply.tickers.map((ticker) => tickerBlock(
    ticker,
    reply.rows.filter((r) => r.ticker === ticker),
    reply.prices === null ? null : reply.prices.filter((p) => p.ticker === ticker),
    reply,
    show,
  ));
  charts.replaceChildren(...blocks.map((b) => b.block));
  blocks.forEach((b) => b.draw());
  charts.dataset.query = query;
  statusLine.textContent = `${reply.rows.length} rows · ${reply.tickers.join(", ")} · ${FREQ_WORDS[reply.freq]}`;
}

function query() {
  const params = new URLSearchParams();
  const tickers = [...tickerSelect.selectedOptions].map((o) => o.value);
  if (tickers.length) params.set("ticker", tickers.join(","));
  params.set("freq", freqSelect.value);
  if (startInput.value) params.set("start", startInput.value);
  if (endInput.value) params.set("end", endInput.value);
  return params.toString();
}

async function show(event) {
  if (event) event.preventDefault();
  const asked = query();
  button.disabled = true;
  statusLine.textContent = "Loading…";
  try {
    const reply = await fetchJSON("/v1/index?" + asked);
    history.replaceState(null, "", "/index?" + asked);
    render(reply, asked);
  } catch (err) {
    statusLine.textContent = "Error: " + err.message;
  } finally {
    button.disabled = false;
  }
}

function fill(info) {
  indexInfo = info;
  document.getElementById("model").textContent = `model: ${info.model}`;
  for (const t of info.tickers) {
    const option = el("option", `${t.ticker} (${count(t.n_msgs)})`);
    option.value = t.ticker;
    tickerSelect.appendChild(option);
  }
  for (const freq of info.freqs) {
    const option = el("option", FREQ_WORDS[freq] || freq);
    option.value = freq;
    freqSelect.appendChild(option);
  }
  const dates = info.tickers.flatMap((t) => [t.first, t.last]).filter(Boolean).sort();
  if (dates.length) [startInput.min, endInput.min, startInput.max, endInput.max] = [dates[0], dates[0], dates.at(-1), dates.at(-1)];
  const asked = new URLSearchParams(location.search);
  const wanted = (asked.get("ticker") || "").split(",").map((t) => t.trim().replace(/^\$/, "").toUpperCase());
  let picked = false;
  for (const option of tickerSelect.options) {
    option.selected = wanted.includes(option.value);
    picked = picked || option.selected;
  }
  if (!picked && tickerSelect.options.length) tickerSelect.options[0].selected = true;
  freqSelect.value = info.freqs.includes(asked.get("freq")) ? asked.get("freq") : info.freq;
  startInput.value = asked.get("start") || "";
  endInput.value = asked.get("end") || "";
}

form.addEventListener("submit", show);
fetchJSON("/v1/index/info").then((info) => {
  fill(info);
  return show();
}).catch((err) => {
  statusLine.textContent = "Error: " + err.message;
});
