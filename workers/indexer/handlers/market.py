"""Handlers of the market contracts (added as the contracts land)."""
