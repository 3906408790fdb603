// The page talks to the same JSON API as any client: POST /v1/predict, GET /v1/model.
import { el, fetchJSON } from "/static/dom.js";

const form = document.getElementById("form");
const input = document.getElementById("messages");
const button = document.getElementById("score");
const statusLine = document.getElementById("status");
const table = document.getElementById("results");
const rows = table.querySelector("tbody");

function resultRow(message, prediction) {
  const tr = el("tr", undefined, "result");
  tr.appendChild(el("td", message, "message"));
  const labelCell = el("td");
  if (prediction.label === null) {  // no words to score: no label, and the reason instead
    labelCell.appendChild(el("span", "none", "label"));
    tr.appendChild(labelCell);
    tr.appendChild(el("td", prediction.reason, "prob"));
    return tr;
  }
  labelCell.appendChild(el("span", prediction.label, "label " + prediction.label));
  tr.appendChild(labelCell);
  const probCell = el("td", undefined, "prob");
  const bar = el("div", undefined, "bar");
  const fill = el("div", undefined, "fill " + prediction.label);
  fill.style.width = (prediction.p_bullish * 100).toFixed(1) + "%";
  bar.appendChild(fill);
  probCell.appendChild(bar);
  probCell.appendChild(el("span", prediction.p_bullish.toFixed(3), "value"));
  tr.appendChild(probCell);
  return tr;
}

async function score(event) {
  event.preventDefault();
  const messages = input.value.split("\n").map((m) => m.trim()).filter((m) => m.length > 0);
  if (messages.length === 0) {
    statusLine.textContent = "Type at least one message.";
    return;
  }
  button.disabled = true;
  statusLine.textContent = "Scoring…";
  try {
    const body = await fetchJSON("/v1/predict", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ messages }),
    });
    rows.replaceChildren(...body.predictions.map((p, i) => resultRow(messages[i], p)));
    table.hidden = false;
    statusLine.textContent = `${messages.length} scored by ${body.model}`;
  } catch (err) {
    statusLine.textContent = "Error: " + err.message;
  } finally {
    button.disabled = false;
  }
}

form.addEventListener("submit", score);
input.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) form.requestSubmit();
});
fetchJSON("/v1/model").then((info) => {
  const acc = info.metrics ? ` · test accuracy ${info.metrics.accuracy.toFixed(3)}` : "";
  document.getElementById("model").textContent = `model: ${info.id}${acc}`;
}).catch(() => {});
