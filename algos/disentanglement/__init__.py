"""Disentangled representation learning: QLAE and autoencoder baselines."""
