"""Prometheus metrics of the OEM pulls (names are what the Grafana dashboard in deploy/ reads).

`connection` is the connection's name in OEM_CONNECTIONS (the simulator's: smartcar, tesla).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

RATE_LIMITED = Counter(
    "workers_oem_rate_limited_total",
    "429 answers from an automaker (each one, also those retried in the call)",
    ["connection"],
)
REAUTH = Counter(
    "workers_oem_reauth_total",
    "OAuth token refreshes; outcome: refreshed | refused (the owner must consent again) | failed",
    ["connection", "outcome"],
)
PULLS = Counter(
    "workers_oem_pulls_total",
    "oem.pull outcomes: stored | held | rate_limited | failed | reauth_required | owner_changed"
    " | link_inactive | no_link | error (transient, retried)",
    ["connection", "outcome"],
)
LINKS_DUE = Gauge(
    "workers_oem_links_due",
    "Links due for a pull at the last oem.schedule run (claimed then, or still waiting; counted"
    " up to 10 runs' claims a connection)",
    multiprocess_mode="livemax",
)
