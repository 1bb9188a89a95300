"""Post-hoc calibration of a frozen classifier (correctness-aware
calibration, temperature and vector scaling)."""
