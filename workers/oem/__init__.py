"""OEM integration: automaker-cloud connectors, onboarding through the automaker (the
oracle's side of `mintWithAttestation`), signed plug-in device telemetry, and the pull and
command tasks (DESIGN.md §4)."""
