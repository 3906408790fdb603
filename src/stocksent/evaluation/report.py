"""One self-contained HTML page that shows how good a trained model is, and against what.

The model's test-split predictions are recomputed exactly as `evaluate` does (the recorded split
of the very training file), so every figure and the table describe the same messages. Images are
inline base64 PNGs and the page has no scripts or external links: it can be mailed or archived.
"""

from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stocksent.errors import StocksentError
from stocksent.labels import LABELS, label_for

TUTORIAL_ACCURACY = 0.717  # the O'Reilly tutorial's LSTM on its own split of this dataset
N_WORST = 20
SECTIONS = (
    ("metrics", "Test metrics"),
    ("learning-curves", "Learning curves"),
    ("confusion", "Confusion matrix"),
    ("calibration", "Calibration"),
    ("roc", "ROC curve"),
    ("errors", f"The {N_WORST} test messages the model gets most wrong"),
)


@dataclass
class TestPredictions:
    messages: list[str]
    labels: np.ndarray  # 1.0 bullish
    p_bullish: np.ndarray
    split_sha256: dict[str, str]


def test_predictions(model, data_path: str | Path | None = None) -> TestPredictions:
    """P(bullish) for the model's own test split, rebuilt from the recorded file, seed and options."""
    from stocksent.splits import recorded_splits, splits_sha256

    splits = recorded_splits(model.config.get("data", {}), model.text_options, data_path)
    return TestPredictions(
        splits.test.messages, splits.test.labels, model.predict_proba(splits.test.messages), splits_sha256(splits)
    )


def read_metrics(directory: str | Path, what: str) -> dict:
    from stocksent.artifacts import read_json

    path = Path(directory)
    path = path / "metrics.json" if path.is_dir() else path
    if not path.is_file():
        raise StocksentError(f"{what} has no metrics.json at {path}")
    return read_json(path)


def png(data: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(data).decode()}">'


def confusion_png(confusion: list[list[int]]) -> bytes:
    from stocksent.evaluation.plots import figure_png, new_figure

    counts = np.asarray(confusion)
    fig = new_figure(4.2, 3.6)
    ax = fig.subplots()
    ax.imshow(counts, cmap="Blues")
    for (i, j), n in np.ndenumerate(counts):
        ax.text(
            j,
            i,
            f"{n}\n{n / max(counts.sum(), 1):.1%}",
            ha="center",
            va="center",
            color="white" if n > counts.max() / 2 else "black",
        )
    ax.set(
        xticks=[0, 1],
        yticks=[0, 1],
        xticklabels=["bearish", "bullish"],
        yticklabels=["bearish", "bullish"],
        xlabel="predicted",
        ylabel="true",
        title="Confusion matrix (test)",
    )
    return figure_png(fig)


def reliability_png(labels: np.ndarray, p: np.ndarray, ece: float) -> bytes:
    from stocksent.evaluation.metrics import reliability_bins
    from stocksent.evaluation.plots import figure_png, new_figure

    bins = reliability_bins(labels, p)
    used = bins["count"] > 0
    fig = new_figure(5, 5.5)
    ax, ax_hist = fig.subplots(2, 1, height_ratios=[3, 1], sharex=True)
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfectly calibrated")
    ax.plot(bins["mean_p"][used], bins["observed"][used], "o-", label=f"model (ECE {ece:.3f})")
    ax.set(ylabel="observed fraction bullish", title="Reliability (test, 10 bins)", xlim=(0, 1), ylim=(0, 1))
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    ax_hist.bar(bins["edges"][:-1], bins["count"], width=0.1, align="edge", edgecolor="white")
    ax_hist.set(xlabel="predicted P(bullish)", ylabel="messages")
    return figure_png(fig)


def roc_png(labels: np.ndarray, p: np.ndarray, auc: float | None) -> bytes:
    from sklearn.metrics import roc_curve

    from stocksent.evaluation.plots import figure_png, new_figure

    fig = new_figure(4.6, 4.2)
    ax = fig.subplots()
    if auc is not None:
        fpr, tpr, _ = roc_curve(labels.astype(int), p)
        ax.plot(fpr, tpr, label=f"model (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], "--", color="grey", label="chance")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (bullish positive, test)")
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    return figure_png(fig)


def fmt(value) -> str:
    return "–" if value is None else f"{value:.4f}" if isinstance(value, float) else html.escape(str(value))


def metrics_table(rows: list[tuple[str, dict]]) -> str:
    keys = ("accuracy", "precision", "recall", "f1", "roc_auc", "n")
    head = "".join(f"<th>{k.replace('_', ' ')}</th>" for k in keys)
    body = "".join(
        f"<tr><th>{html.escape(name)}</th>" + "".join(f"<td>{fmt(m.get(k))}</td>" for k in keys) + "</tr>"
        for name, m in rows
    )
    return f'<table class="metrics"><tr><th>model</th>{head}</tr>{body}</table>'


def baseline_check(baseline: dict, config: dict, preds: TestPredictions) -> str | None:
    """Why the baseline is not comparable to the model (None when both saw the same test messages)."""
    recorded = baseline.get("split_sha256", {}).get("test")
    if recorded is None:
        return "the baseline's metrics.json records no split fingerprint, so its split cannot be checked"
    if recorded != preds.split_sha256["test"]:
        return (
            f"the baseline was tested on different messages (data {baseline.get('data', {}).get('path')}, "
            f"split seed {baseline.get('data', {}).get('split_seed')}; the model's: "
            f"{config['data'].get('path')}, split seed {config['data'].get('split_seed')})"
        )
    return None


def worst_table(preds: TestPredictions, threshold: float) -> str:
    wrong = np.abs(preds.labels - preds.p_bullish)
    order = np.argsort(-wrong, kind="stable")[:N_WORST]
    rows = []
    for rank, i in enumerate(order, start=1):
        truth = LABELS[int(preds.labels[i] >= 0.5)]
        said = label_for(float(preds.p_bullish[i]), threshold)
        rows.append(
            f"<tr><td>{rank}</td><td>{truth}</td><td>{said}</td><td>{preds.p_bullish[i]:.3f}</td>"
            f"<td class=msg>{html.escape(preds.messages[i])}</td></tr>"
        )
    return (
        '<table class="errors"><tr><th>#</th><th>true</th><th>predicted</th><th>P(bullish)</th>'
        f"<th class=msg>message</th></tr>{''.join(rows)}</table>"
    )


STYLE = """body{font:15px/1.45 system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.6em 0}th,td{border:1px solid #ccc;padding:.3em .6em;text-align:right}
td.msg,th.msg{text-align:left;max-width:640px;word-break:break-word}.warn{background:#fff3cd;padding:.6em;border:1px solid #e0c060}
img{max-width:100%}.meta td,.meta th{text-align:left}h2{margin-top:1.6em;border-bottom:1px solid #ddd}"""


def build_report(
    model_dir: str | Path, baseline_dir: str | Path | None = None, data_path: str | Path | None = None
) -> str:
    """The report as an HTML string."""
    from stocksent.evaluation.metrics import classification_metrics, expected_calibration_error
    from stocksent.evaluation.plots import learning_curve_png
    from stocksent.sentiment import SentimentModel

    model = SentimentModel.load(model_dir, precision="float32")  # the numbers of metrics.json
    metrics = read_metrics(model_dir, f"model directory {model_dir}")
    config = model.config
    preds = test_predictions(model, data_path)
    test = classification_metrics(preds.labels, preds.p_bullish, model.threshold)
    majority_label = 1.0 if preds.labels.mean() >= 0.5 else 0.0
    rows = [(f"LSTM ({Path(model_dir).name})", test)]
    notes = []
    if abs(test["accuracy"] - metrics.get("test", {}).get("accuracy", test["accuracy"])) > 1e-9:
        notes.append(
            f"recomputed test accuracy {test['accuracy']:.4f} differs from the recorded "
            f"{metrics['test']['accuracy']:.4f} (the threshold or the weights changed after training)"
        )
    blend = metrics.get("blend")
    if blend:
        notes.append(
            f"blend: validation accuracy {blend['val_accuracy_model']:.4f} (network) and "
            f"{blend['val_accuracy_linear']:.4f} (logistic regression over its n-grams, C={blend['c']:g}) "
            f"-> {blend['val_accuracy_blend']:.4f} blended (weights {blend['network_weight']:.2f} and "
            f"{blend['linear_weight']:.2f}, fitted on validation)"
        )
    if baseline_dir is not None:
        baseline = read_metrics(baseline_dir, f"baseline {baseline_dir}")
        if "test" not in baseline:
            raise StocksentError(f"{baseline_dir} is not a baseline directory (its metrics.json has no test block)")
        problem = baseline_check(baseline, config, preds)
        if problem:
            notes.append(f"baseline not comparable: {problem}")
        rows.append((f"TF-IDF + logistic regression ({Path(baseline_dir).name})", baseline["test"]))
        chosen = baseline.get("validation", {})
        if chosen:
            notes.append(
                f"baseline: {', '.join(f'{k}={v}' for k, v in chosen.get('chosen', {}).items())} chosen on "
                f"the validation split (val accuracy {chosen.get('accuracy', float('nan')):.4f})"
            )
    rows.append(
        (
            f"majority class ({'bullish' if majority_label else 'bearish'})",
            classification_metrics(preds.labels, np.full(len(preds.labels), majority_label)),
        )
    )
    rows.append(("tutorial LSTM (its own split, as published)", {"accuracy": TUTORIAL_ACCURACY}))
    ece = expected_calibration_error(preds.labels, preds.p_bullish)
    history = metrics.get("history", [])

    data = config.get("data", {})
    meta = {
        "model": str(model_dir),
        "model id": model.model_id,
        "created": config.get("created"),
        "preset": config.get("train", {}).get("preset"),
        "data": f"{data.get('path')} (sha256 {str(data.get('sha256'))[:12]}…)",
        "split seed": data.get("split_seed"),
        "split": json.dumps(data.get("split")),
        "threshold": model.threshold,
        "temperature": config.get("temperature", 1.0),
        "best epoch": metrics.get("best_epoch"),
    }
    sections = {
        "metrics": metrics_table(rows)
        + "".join(
            f'<p class="{"warn" if "not comparable" in n or "differs" in n else "note"}">{html.escape(n)}</p>'
            for n in notes
        ),
        "learning-curves": png(learning_curve_png(history), "learning curves")
        if history
        else "<p>no training history recorded</p>",
        "confusion": png(confusion_png(test["confusion"]), "confusion matrix"),
        "calibration": f"<p>Expected calibration error (10 equal-width bins of P(bullish)): <b>ECE = {ece:.4f}</b></p>"
        + png(reliability_png(preds.labels, preds.p_bullish, ece), "reliability diagram"),
        "roc": png(roc_png(preds.labels, preds.p_bullish, test["roc_auc"]), "ROC curve"),
        "errors": "<p>Ranked by |true label − P(bullish)|.</p>" + worst_table(preds, model.threshold),
    }
    meta_rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{fmt(v)}</td></tr>" for k, v in meta.items())
    body = "".join(f'<section id="{sid}"><h2>{title}</h2>{sections[sid]}</section>' for sid, title in SECTIONS)
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>stocksent report: '
        f"{html.escape(Path(model_dir).name)}</title><style>{STYLE}</style></head><body>"
        f'<h1>stocksent model report</h1><section id="summary"><table class="meta">{meta_rows}</table>'
        f"</section>{body}</body></html>\n"
    )


def write_report(
    model_dir: str | Path,
    baseline_dir: str | Path | None = None,
    out: str | Path | None = None,
    data_path: str | Path | None = None,
) -> Path:
    from stocksent.artifacts import MODEL_FILES
    from stocksent.atomic import atomic_open, cannot_write, check_output_file
    from stocksent.writers import refuse_inputs

    out = Path(out) if out else Path(model_dir) / "report.html"
    if out.is_dir():
        raise StocksentError(f"--out {out} is a directory; give a file name such as report.html")
    inputs = [Path(model_dir) / name for name in (*MODEL_FILES, "metrics.json")]
    inputs += [Path(p) for p in (data_path, baseline_dir and Path(baseline_dir) / "metrics.json") if p]
    refuse_inputs([out], inputs)
    hint = "give --out a path in a folder you can write"
    check_output_file(out, hint)  # before the report's work
    page = build_report(model_dir, baseline_dir, data_path)
    try:
        with atomic_open(out, "w", encoding="utf-8") as handle:
            handle.write(page)
    except OSError as err:
        raise cannot_write(out, err, hint) from None
    return out
