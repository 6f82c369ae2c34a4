"""The embedded local runtime: kubestep's management service on an in-process moto emulator.

Tooling for workstations and tests, not part of the Lambda asset. Importing this package is
cheap; moto is imported when a runtime starts. It needs the `local` extra and runs from the
checkout (``pip install -e '.[local]'`` there; see ``kubestep.checkout``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kubestep_local.runtime import ExecutionFailed, LocalRuntime, RuntimeConfig, serve_forever

__all__ = ["ExecutionFailed", "LocalRuntime", "RuntimeConfig", "serve_forever"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from kubestep_local import runtime

        return getattr(runtime, name)
    raise AttributeError(name)
