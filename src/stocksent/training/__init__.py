"""Training: prepare (data, vocabulary), epochs (the sharded step, validation, checkpoints),
finalise (blend, calibration, test, the model directory); rundir and checkpoint keep runs apart
and resumable."""

from stocksent.training.run import TrainResult, train

__all__ = ["TrainResult", "train"]
