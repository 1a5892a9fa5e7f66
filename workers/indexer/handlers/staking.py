"""Handlers of the staking contracts (added as the contracts land)."""
