"""Deep image descriptors and what they feed (VGG paper, Appendix B): linear SVMs and nearest-image retrieval."""
