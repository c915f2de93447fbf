"""Models and data: architectures, pretrained loaders, datasets, checkpoints, training."""
