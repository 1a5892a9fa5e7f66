"""Handlers of the identity contracts (added as the contracts land)."""
