"""The bench's result as the table `stocksent bench` prints."""

from __future__ import annotations

ROWS = [  # (key, label, format)
    ("train_epoch_seconds", "train epoch, our pipeline (s)", "{:.1f}"),
    ("padded_epoch_seconds", "train epoch, tutorial's padded way (s)", "{:.0f}"),
    ("train_speedup", "training speedup", "{:.1f}x"),
    ("train_peak_rss_mb", "training peak RSS (MB)", "{:.0f}"),
    ("predict_msgs_per_second", "predict, raw text -> labels (msgs/s)", "{:,.0f}"),
    ("predict_msgs_per_second_one_thread", "  the same on one thread (msgs/s)", "{:,.0f}"),
    ("predict_msgs_per_second_float32", "  precision float32 (msgs/s)", "{:,.0f}"),
    ("predict_msgs_per_second_bfloat16", "  precision bfloat16 (msgs/s)", "{:,.0f}"),
    ("predict_msgs_per_second_plain", "  plain module forward (msgs/s)", "{:,.0f}"),
    ("latency_ms_p50", "latency, one message, p50 (ms)", "{:.2f}"),
    ("latency_ms_p99", "latency, one message, p99 (ms)", "{:.2f}"),
    ("load_seconds", "SentimentModel.load (s)", "{:.2f}"),
    ("predict_peak_rss_mb", "prediction peak RSS (MB)", "{:.0f}"),
    ("accuracy_gap_points", "largest accuracy gap to float32 plain (points)", "{:.2f}"),
]


def format_table(result: dict) -> str:
    m = result["machine"]
    lines = [
        f"machine: {m['cpu']}, {m['cores']} cores, torch {m['torch']} ({m['torch_threads']} threads), "
        f"device {m['device']}"
        + (f" ({m['gpu']})" if "gpu" in m else "")
        + f", load average {m['load_average_start']} -> {m['load_average_end']}",
        f"model for prediction: {result['model']}; test messages: {result['test_messages']}; "
        f"default precision here: {result['predict_precision']}",
        "engine: " + ", ".join(f"{k} {v}" for k, v in result.get("predict_engine", {}).items()),
        f"train epoch: {result['train_epoch_method']}; padded epoch: {result['padded_epoch_method']}",
        f"process CPU seconds per epoch (all threads; steadier than wall time on a busy machine): "
        f"ours {result['train_epoch_cpu_seconds']:.1f}, padded {result['padded_epoch_cpu_seconds']:.0f}",
        "",
    ]
    targets = result["targets"]
    for key, label, fmt in ROWS:
        if key not in result:
            continue
        goal = (
            f"  (goal {targets[key]['goal']}: {'met' if targets[key]['met'] else 'NOT met'})" if key in targets else ""
        )
        lines.append(f"{label:<48} {fmt.format(result[key]):>10}{goal}")
    accuracy = ", ".join(f"{k} {v:.4f}" for k, v in result["test_accuracy"].items())
    lines.append(f"test accuracy: {accuracy}")
    if "predict_msgs_per_second_gpu" in result:
        lines.append(f"GPU forward, raw text -> probabilities: {result['predict_msgs_per_second_gpu']:,.0f} msgs/s")
    return "\n".join(lines)
