"""Where the bundled EEG data lives.

The data root defaults to ``../shared/data`` relative to the repository root and can be set with
the ``NEURIPT_DATA`` environment variable or the CLI flag ``--data-root``. The variable is read
when :func:`data_root` is called, never at import time.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "NEURIPT_DATA"
REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA_ROOT = REPO_ROOT.parent / "shared" / "data"


def data_root(override: str | os.PathLike | None = None) -> Path:
    """Return the data root: ``override``, else ``$NEURIPT_DATA``, else ``../shared/data``.

    Parameters
    ----------
    override : path-like | None
        An explicit folder (for example from ``--data-root``); wins over everything else.

    Returns
    -------
    root : Path
        The folder; it is not required to exist (callers report missing files themselves).
    """
    if override is not None:
        return Path(override).expanduser()
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    return DEFAULT_DATA_ROOT
