"""Deep image descriptors and what they feed (VGG paper, Appendix B): linear SVMs and nearest-image retrieval."""

C_GRID = (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0)  # the linear SVMs' C values tried by cross-validation by default
