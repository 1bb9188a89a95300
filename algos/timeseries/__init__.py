"""Time-series forecasting methods (EntroPE)."""
