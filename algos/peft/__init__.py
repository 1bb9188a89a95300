"""Parameter-efficient fine-tuning methods (adapters on frozen models)."""
