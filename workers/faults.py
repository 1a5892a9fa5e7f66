"""Test-only fault injection: a named step where the process kills itself (SIGKILL), once.

Set FAULT_POINT to a step name ("settlement.propose:before_send", …) and FAULT_MARKER to a
file path: the first process to reach the step creates the marker and dies on the spot, as
if the machine lost power; later runs pass (the marker exists). Unset in production: then
`fault_point` is a dictionary lookup and nothing else.
"""

from __future__ import annotations

import logging
import os
import signal

from workers.config import get_settings

log = logging.getLogger(__name__)


def fault_point(name: str) -> None:
    """Dies here (SIGKILL) if FAULT_POINT names this step and its marker does not exist yet."""
    settings = get_settings()
    if settings.fault_point != name:
        return
    marker = settings.fault_marker
    if marker is not None:
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return
        os.write(fd, f"{name} pid {os.getpid()}\n".encode())
        os.close(fd)
    log.warning("fault injection: SIGKILL at %s (pid %s)", name, os.getpid())
    os.kill(os.getpid(), signal.SIGKILL)
