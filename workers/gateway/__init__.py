"""The data gateway: HTTP API for buyers and owners (DESIGN.md §4)."""
