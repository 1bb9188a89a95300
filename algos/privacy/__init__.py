"""Privacy attacks used to audit shared gradients."""
