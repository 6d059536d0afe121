"""Data: ImageFolder trees, the paper's scale-jittered crops, mean RGB / PCA statistics, the built-in digits."""
