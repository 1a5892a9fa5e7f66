"""`make up` / `make down` / `make status`: the local stack in the background (DESIGN.md §5).

python -m scripts.stack up       # start anvil, deploy, broker, worker, beat, simulator, gateway
python -m scripts.stack down     # stop every process .run/stack.json records
python -m scripts.stack status   # what runs, where
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

from devkit.stack import (
    STACK_FILE,
    StackError,
    register_oem_connections,
    running_stack,
    start_stack,
    stop_stack,
)
from workers.config import get_settings


def up() -> int:
    current = running_stack()
    if current is not None:
        print(f"the stack is already up ({STACK_FILE}); `make down` first to restart it")
        return 0
    stop_stack()  # a stale record from a crashed run: stop what may be left of it
    try:
        info = start_stack(broker_url=get_settings().broker_url)
        register_oem_connections(info)
    except StackError as exc:
        print(f"the stack did not start: {exc}", file=sys.stderr)
        return 1
    print(f"stack up, described in {STACK_FILE}:")
    for key, value in asdict(info).items():
        if key != "processes":
            print(f"  {key:<14} {value}")
    print("  processes      " + ", ".join(f"{p.name} ({p.pid})" for p in info.processes))
    print("logs in .run/*.log; `make down` stops everything")
    return 0


def down() -> int:
    stopped = stop_stack()
    print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")
    return 0


def status() -> int:
    current = running_stack()
    if current is None:
        print("the stack is down")
        return 1
    print(json.dumps(asdict(current), indent=2))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=("up", "down", "status"))
    return {"up": up, "down": down, "status": status}[parser.parse_args().command]()


if __name__ == "__main__":
    sys.exit(main())
