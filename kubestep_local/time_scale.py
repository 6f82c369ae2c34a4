"""Scale the time the Step Functions interpreter spends in Wait states and Retry intervals.

A polling workflow that waits 30 s between ``ResourcePending`` retries would take minutes per
test; at a time scale of 0.02 it takes 0.6 s. Only the interpreter's two sleeping call sites
change (``moto_compat.scale_asl_waits``), never the global ``time.sleep``.
"""

from __future__ import annotations

import threading

from kubestep_local import moto_compat


class TimeScale:
    """A process-wide factor (1.0 = real time) applied to ASL waits and retry intervals."""

    def __init__(self, scale: float = 1.0) -> None:
        self._scale = 1.0
        self.scale = scale
        self._patches = moto_compat.PatchSet()
        self._lock = threading.Lock()
        # Set on uninstall: retry sleeps in flight end early, so interpreter threads of aborted
        # executions do not outlive the runtime by a whole retry interval.
        self._shutdown = threading.Event()
        # Told of each scaled wait: (execution ARN or None, wall-clock start, end).
        self.on_wait: moto_compat.WaitObserver | None = None

    @property
    def scale(self) -> float:
        return self._scale

    @scale.setter
    def scale(self, value: float) -> None:
        if value < 0:
            raise ValueError("time scale must be >= 0")
        self._scale = float(value)

    def seconds(self, seconds: float) -> float:
        """Real seconds for ``seconds`` of workflow time."""
        return max(0.0, float(seconds) * self._scale)

    def install(self) -> None:
        with self._lock:
            if self._patches:
                return
            self._shutdown = threading.Event()
            moto_compat.scale_asl_waits(self._patches, self.seconds, self._shutdown, self._waited)

    def _waited(self, execution_arn: str | None, started: float, ended: float) -> None:
        if self.on_wait is not None:
            self.on_wait(execution_arn, started, ended)

    def uninstall(self) -> None:
        with self._lock:
            if not self._patches:
                return
            self._patches.undo()
            self._shutdown.set()
