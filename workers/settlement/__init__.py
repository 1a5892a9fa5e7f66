"""Settlement (placeholder until the module lands)."""
