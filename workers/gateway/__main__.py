"""`python -m workers.gateway`: the gateway under uvicorn, where the settings say.

Listens on GATEWAY_HOST:GATEWAY_PORT with GATEWAY_WORKERS processes (workers/config.py);
every other setting is read from the environment by each process, as the Celery workers do.
With PROMETHEUS_MULTIPROC_DIR set, the files a previous run left there are removed first.
Equivalent to `uvicorn --factory workers.gateway.app:create_app --host H --port P --workers N`.
"""

from __future__ import annotations

import uvicorn

from workers.config import get_settings
from workers.gateway.metrics import clear_multiproc_dir

#: The ASGI factory uvicorn imports in each worker process.
APP_FACTORY = "workers.gateway.app:create_app"


def main() -> None:
    settings = get_settings()
    if settings.prometheus_multiproc_dir is not None:
        clear_multiproc_dir(settings.prometheus_multiproc_dir)
    uvicorn.run(
        APP_FACTORY,
        factory=True,
        host=settings.gateway_host,
        port=settings.gateway_port,
        workers=settings.gateway_workers,
        log_level="info",
    )


if __name__ == "__main__":
    main()
