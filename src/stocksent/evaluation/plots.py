"""Figures as PNG bytes. `matplotlib.figure.Figure` draws without pyplot, so the user's matplotlib
backend and pyplot's global figure list are never touched (a notebook keeps its inline plots)."""

from __future__ import annotations

import io


def new_figure(width: float, height: float):
    """A figure with the Agg canvas, outside pyplot: nothing global changes.

    >>> fig = new_figure(4, 3); ax = fig.subplots(); _ = ax.plot([1, 2])
    """
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def figure_png(fig, dpi: int = 110) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


def learning_curve_png(history: list[dict]) -> bytes:
    """Loss and accuracy per epoch, training beside validation."""
    epochs = [h["epoch"] for h in history]
    fig = new_figure(10, 4)
    ax_loss, ax_acc = fig.subplots(1, 2)
    ax_loss.plot(epochs, [h["train_loss"] for h in history], "o-", label="train")
    ax_loss.plot(epochs, [h["val_loss"] for h in history], "o-", label="validation")
    ax_loss.set(title="Loss", xlabel="epoch")
    ax_acc.plot(epochs, [h["train_accuracy"] for h in history], "o-", label="train")
    ax_acc.plot(epochs, [h["val_accuracy"] for h in history], "o-", label="validation")
    ax_acc.set(title="Accuracy", xlabel="epoch")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    return figure_png(fig)
