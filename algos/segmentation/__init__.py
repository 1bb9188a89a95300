"""Transductive and source-free segmentation methods."""
