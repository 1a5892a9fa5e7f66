"""Off-chain workers of the DIMO Phase 1.2 protocol."""
