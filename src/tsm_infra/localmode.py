"""Whether the local emulator can run: its libraries are the optional `local` extra.

`pip install tsm-infra` deploys to real AWS; moto (with its server's Flask) and cryptography,
which only the embedded emulator uses, come with `pip install 'tsm-infra[local]'`. The check
looks the modules up without importing them, so it costs nothing when they are there.
"""

from __future__ import annotations

import importlib.util

from tsm_infra.errors import BadInputError

# The top-level modules the emulator imports from the `local` extra.
LOCAL_MODULES = ("moto", "flask", "flask_cors", "cryptography")

MISSING_LOCAL_EXTRA = "the local emulator needs the 'local' extra: pip install 'tsm-infra[local]'"


def missing_local_modules() -> list[str]:
    """The `local` extra's modules that are not installed."""
    return [name for name in LOCAL_MODULES if importlib.util.find_spec(name) is None]


def require_local_extra() -> None:
    """Raise BadInputError (exit 2) naming the extra when the emulator's libraries are missing."""
    missing = missing_local_modules()
    if missing:
        raise BadInputError(f"{MISSING_LOCAL_EXTRA} (missing: {', '.join(missing)})")
