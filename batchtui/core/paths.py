"""Where batchtui keeps its files (CLI-CONTRACT.md, "Where things live").

`BATCHTUI_HOME=DIR` puts everything under DIR, which is what tests and portable installs want.
Unset, we follow the platform: settings and user themes in the user config dir, the ledger,
downloads and logs in the user data dir. Nothing is created until it is needed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import platformdirs

APP_NAME = "batchtui"
HOME_ENV = "BATCHTUI_HOME"

# Batch results can hold anything a user sent to a model, so our directories are private.
PRIVATE_DIR_MODE = 0o700


@dataclass(frozen=True)
class Paths:
    config_dir: Path  # config.toml, themes/
    data_dir: Path  # ledger.db, downloads/, logs/

    @classmethod
    def resolve(cls, env: Mapping[str, str] = os.environ) -> Paths:
        home = env.get(HOME_ENV, "").strip()
        if home:
            # Absolute now, so a later chdir cannot move the ledger.
            root = Path(home).expanduser().absolute()
            return cls(config_dir=root, data_dir=root)
        # platformdirs reads XDG_* from the process environment itself.
        return cls(
            config_dir=platformdirs.user_config_path(APP_NAME, appauthor=False),
            data_dir=platformdirs.user_data_path(APP_NAME, appauthor=False),
        )

    @property
    def config_file(self) -> Path:
        return self.config_dir / "config.toml"

    @property
    def themes_dir(self) -> Path:
        return self.config_dir / "themes"

    @property
    def ledger_file(self) -> Path:
        return self.data_dir / "ledger.db"

    @property
    def downloads_dir(self) -> Path:
        """The default; `Settings.downloads_path(paths)` applies the config override."""
        return self.data_dir / "downloads"

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"


def ensure_private_dir(path: Path) -> Path:
    """Create `path` (and any missing parents) as 0700 and return it.

    mkdir's mode is filtered by the umask, so each directory we create is chmod'ed explicitly.
    An existing `path` is one of ours (callers pass only batchtui's own directories), so it is
    tightened to 0700 too; existing parents belong to the user and are left alone.
    """
    missing = [p for p in (path, *path.parents) if not p.exists()]
    path.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    for directory in {path, *missing}:
        directory.chmod(PRIVATE_DIR_MODE)
    return path
