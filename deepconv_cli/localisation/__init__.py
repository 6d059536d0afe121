"""Object localisation (VGG paper Appendix A): SCR/PCR box regression, centre-crop and dense testing, greedy merging."""
