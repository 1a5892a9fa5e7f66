"""Tests start real anvil nodes through the same devnet helper the demo uses."""

from devkit.devnet import ANVIL_KEYS, AnvilNode, free_port

__all__ = ["ANVIL_KEYS", "AnvilNode", "free_port"]
