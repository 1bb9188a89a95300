"""Language-model methods: next-token training and its per-token losses."""
