"""The embedded AWS emulator: moto's server, in this process, on loopback.

In-process matters: the Lambda seam, the instance simulator and the EventBridge stand-ins read
moto's backends directly, and the Step Functions interpreter runs in this process's threads.

Everything process-wide the server changes (moto config, ``MOTO_PORT``, the Step Functions
backend binding) is undone by ``stop()``, so ``mock_aws`` tests running later in the same process
see stock moto.
"""

from __future__ import annotations

import errno
import logging
import socket

from kubestep_local import moto_compat

LOG = logging.getLogger(__name__)


class PortInUse(RuntimeError):
    """A port the runtime was asked to listen on is taken."""

    def __init__(self, port: int, what: str, option: str) -> None:
        self.port = port
        self.what = what
        self.option = option
        super().__init__(f"port {port} ({what}) is in use; pick another with {option} (0 picks a free one)")


def port_available(port: int, host: str = "127.0.0.1") -> bool:
    """Whether ``host:port`` can be listened on now (0 always can). Like the servers, with
    SO_REUSEADDR: a port in TIME_WAIT is free."""
    if not port:
        return True
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


class EmulatorServer:
    """moto on ``host:port`` with real ASL execution enabled."""

    def __init__(self, port: int = 4566, host: str = "127.0.0.1", *, quiet: bool = True) -> None:
        self.host = host
        self.requested_port = port
        self.port = port
        self.quiet = quiet
        self._server: moto_compat.ServerHandle | None = None
        self._patches = moto_compat.PatchSet()
        self._log_levels: dict[str, int] = {}

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        noisy = moto_compat.NOISY_LOGGERS if self.quiet else {"werkzeug": logging.WARNING}
        for name, level in noisy.items():
            logger = logging.getLogger(name)
            self._log_levels[name] = logger.level
            logger.setLevel(level)
        try:
            self._server = moto_compat.start_server(self.host, self.requested_port)
        except OSError as exc:
            self.stop()
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                raise PortInUse(self.requested_port, "the AWS endpoint", "--port") from exc
            raise
        self.port = self._server.port
        try:
            moto_compat.bind_step_functions(self._patches, self.port)
            moto_compat.enable_asl_execution(self.endpoint_url)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.stop()
        self._patches.undo()
        for name, level in self._log_levels.items():
            logging.getLogger(name).setLevel(level)
        self._log_levels = {}
