"""`make demo`: the whole story of DESIGN.md §5 on the local stack.

If `make up` left a stack running, the story runs against it and leaves it running;
otherwise the demo starts its own stack on free ports and stops every process it started,
on success or failure. A second run works: each stack starts a new chain.
"""

from __future__ import annotations

import sys
import tempfile
import time
import traceback
from pathlib import Path

from devkit.stack import StackError, running_stack, start_stack, stop_stack
from devkit.story import Story, World
from workers.config import get_settings


def main() -> int:
    started = time.monotonic()
    stack = running_stack()
    own_dir: Path | None = None
    if stack is None:
        own_dir = Path(tempfile.mkdtemp(prefix="dimo-demo-"))
        print(
            "starting the local stack: anvil, deployment, broker, Celery worker and beat, "
            "OEM simulator, MQTT broker (if none answers), device ingest, gateway"
        )
        try:
            stack = start_stack(own_dir, broker_url=get_settings().broker_url, fixed_ports=False)
        except StackError as exc:
            print(f"the stack did not start: {exc}", file=sys.stderr)
            return 1
    else:
        print("using the stack `make up` left running")
    print(f"chain {stack.rpc_url} | gateway {stack.gateway_url} | automaker simulator {stack.simulator_url}")
    print(f"database {stack.database_url} | broker {stack.broker_url} | MQTT {stack.mqtt_url}")
    try:
        Story(World.connect(stack)).run()
    except Exception as exc:
        traceback.print_exc()
        print(f"\nthe demo failed: {exc!r}; logs in {own_dir or '.run'}", file=sys.stderr)
        return 1
    finally:
        if own_dir is not None:
            stopped = stop_stack(own_dir)
            print(f"\nstopped {', '.join(stopped)}; nothing left running")
    print(f"the story took {time.monotonic() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
