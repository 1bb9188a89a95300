"""Pruning methods: dynamic (per-input) and static channel pruning."""
