"""Logging to a private file: the dashboard owns the terminal, so logs cannot go there.

`BATCHTUI_LOG_LEVEL` (default WARNING; DEBUG for troubleshooting) sets the level. What we log
never holds a key: auth travels in headers, which are not logged, and error text passes
through the transport's redaction first.
"""

from __future__ import annotations

import logging
import os
from logging.handlers import RotatingFileHandler

from batchtui.core.paths import Paths, ensure_private_dir

LEVEL_ENV = "BATCHTUI_LOG_LEVEL"
_configured: set[str] = set()


def setup_logging(paths: Paths, level: str | None = None) -> logging.Handler | None:
    name = (level or os.environ.get(LEVEL_ENV) or "WARNING").upper()
    numeric = logging.getLevelName(name)
    if not isinstance(numeric, int):
        numeric = logging.WARNING
    target = ensure_private_dir(paths.logs_dir) / "batchtui.log"
    if str(target) in _configured:
        return None
    fd = os.open(target, os.O_CREAT | os.O_APPEND | os.O_WRONLY, 0o600)
    os.close(fd)
    handler = RotatingFileHandler(target, maxBytes=5_000_000, backupCount=3, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("batchtui")
    root.addHandler(handler)
    root.setLevel(numeric)
    # httpx logs each request line at INFO (method, URL, status): useful, and key-free.
    logging.getLogger("httpx").addHandler(handler)
    logging.getLogger("httpx").setLevel(max(numeric, logging.INFO))
    _configured.add(str(target))
    return handler
