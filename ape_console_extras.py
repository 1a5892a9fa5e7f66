"""ape's console extras file: `ape console` imports the file of this name at the project root
and calls its `ape_init_extras`. The console's helpers are the dev kit's (devkit/console.py)."""

from devkit.console import ape_init_extras

__all__ = ["ape_init_extras"]
