"""Inference: tile grid and blending, the streaming SAR scene pipeline, plain images, batches."""
