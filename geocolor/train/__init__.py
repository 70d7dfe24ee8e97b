"""Training: a generic driver and the model-specific tasks that plug into it.

- :mod:`geocolor.train.task`: the task API: :class:`~geocolor.train.task.TrainSettings`,
  :class:`~geocolor.train.task.TrainTask`, :class:`~geocolor.train.task.StepContext`,
  :class:`~geocolor.train.task.TrainResult`.
- :mod:`geocolor.train.sampling`: per-item seeds and the epoch sampler (exact resume).
- :mod:`geocolor.train.trainer`: :class:`~geocolor.train.trainer.Trainer` and
  :func:`~geocolor.train.trainer.run_training` (epochs, seeding, exact resume,
  checkpoints, validation/best, samples, loss plot, W&B, Ctrl-C, progress callback).
- :mod:`geocolor.train.loop`: the old import paths of all of the above.
- :mod:`geocolor.train.runtime`: devices, seeds, determinism, AMP, torchrun/DDP.
- :mod:`geocolor.train.checkpoint`: atomic, ``weights_only``-safe checkpoints.
- :mod:`geocolor.train.tracking`: the JSONL metrics log and Weights & Biases.
- :mod:`geocolor.train.plot`: loss plots and image grids drawn with PIL.
- :mod:`geocolor.train.sar`: the SAR -> optical GAN (``geocolor train sar``).
- :mod:`geocolor.train.semantic`: semantic colorization (``geocolor train semantic``).

Nothing here imports click; the CLI lives in :mod:`geocolor.cli.train`.
"""
