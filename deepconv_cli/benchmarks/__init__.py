"""`deepconv benchmark`: timed comparisons of deepconv's loader, training step and evaluation against baselines."""
