"""Scale the time the Step Functions interpreter spends in Wait states and Retry intervals.

moto's ASL interpreter really sleeps: ``time.sleep(interval_seconds)`` between retries
(``moto/stepfunctions/parser/asl/component/common/retry/retrier_decl.py:107``) and
``env.program_state_event.wait(wait_seconds)`` in Wait states (``.../state/wait/wait_function/
wait_function.py:15-33``, shared by Seconds, SecondsPath, Timestamp and TimestampPath). A
polling workflow that waits 30 s between ``ResourcePending`` retries would take minutes per test,
so the runtime patches exactly those two call sites -- never the global ``time.sleep`` (moto's
server, boto3 retries and our threads must keep real time).
"""

from __future__ import annotations

import logging
import threading
import time
import types
from typing import Any

LOG = logging.getLogger(__name__)


class TimeScale:
    """A process-wide factor (1.0 = real time) applied to ASL waits and retry intervals."""

    def __init__(self, scale: float = 1.0) -> None:
        self._scale = float(scale)
        self._saved: dict[str, Any] = {}
        self._lock = threading.Lock()
        # Set on uninstall: retry sleeps in flight end early, so interpreter threads of aborted
        # executions do not outlive the runtime by a whole retry interval.
        self._shutdown = threading.Event()

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
            if self._saved:
                return
            from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
            from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import (
                WaitFunction,
            )

            time_scale = self

            # retrier_decl does ``import time`` and calls ``time.sleep``: give that module its own
            # ``time`` whose sleep is scaled, leaving the real module untouched for everyone else.
            scaled_time = types.SimpleNamespace(**{k: getattr(time, k) for k in dir(time) if not k.startswith("__")})
            self._shutdown = threading.Event()
            shutdown = self._shutdown
            scaled_time.sleep = lambda seconds: shutdown.wait(time_scale.seconds(seconds))

            def _wait_interval(self: Any, env: Any, wait_seconds: float) -> None:
                deadline = time.monotonic() + time_scale.seconds(wait_seconds)
                while True:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return
                    env.program_state_event.wait(remaining)
                    # The event is set on any program state change; only an ended/stopped
                    # program interrupts the wait (moto's own loop re-enters on the rest).
                    if not env.is_running():
                        return

            self._saved = {
                "retrier_time": retrier_decl.time,
                "wait_interval": WaitFunction.__dict__["_wait_interval"],
            }
            retrier_decl.time = scaled_time  # type: ignore[assignment]
            WaitFunction._wait_interval = _wait_interval  # type: ignore[method-assign]

    def uninstall(self) -> None:
        with self._lock:
            if not self._saved:
                return
            from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
            from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import (
                WaitFunction,
            )

            retrier_decl.time = self._saved["retrier_time"]
            WaitFunction._wait_interval = self._saved["wait_interval"]  # type: ignore[method-assign]
            self._saved = {}
            self._shutdown.set()
