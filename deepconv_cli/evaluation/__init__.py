"""Evaluation as in section 3.2 of the VGG paper: dense and multi-crop, multi-scale, fusion, reports."""
