"""Training: a generic driver and the model-specific tasks that plug into it.

- :mod:`geocolor.train.loop`: :class:`~geocolor.train.loop.TrainSettings`,
  :class:`~geocolor.train.loop.TrainTask`, :func:`~geocolor.train.loop.run_training`
  (epochs, seeding, exact resume, checkpoints, validation/best, samples, loss
  plot, W&B, Ctrl-C, progress callback).
- :mod:`geocolor.train.runtime`: devices, seeds, determinism, AMP, torchrun/DDP.
- :mod:`geocolor.train.checkpoint`: atomic, ``weights_only``-safe checkpoints.
- :mod:`geocolor.train.tracking`: the JSONL metrics log and Weights & Biases.
- :mod:`geocolor.train.plot`: loss plots and image grids drawn with PIL.
- :mod:`geocolor.train.sar`: the SAR -> optical GAN (``geocolor train sar``).
- :mod:`geocolor.train.semantic`: semantic colorization (``geocolor train semantic``).

Nothing here imports click; the CLI lives in :mod:`geocolor.cli.train`.
"""
