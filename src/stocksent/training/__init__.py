"""Training: preparation, the epoch loop, checkpoints and resume, the blend and calibration."""

from stocksent.training.loop import TrainResult, train

__all__ = ["TrainResult", "train"]
