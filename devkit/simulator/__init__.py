"""An OEM cloud simulator: a real HTTP server speaking a Smartcar-style and a Tesla Fleet
API-style API for a simulated fleet, with OAuth, rate limits and faults on demand.

Run it with `python -m devkit.simulator --port N`; tests start it the same way.
"""

from devkit.simulator.app import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, create_app

__all__ = ["DEFAULT_CLIENT_ID", "DEFAULT_CLIENT_SECRET", "create_app"]
