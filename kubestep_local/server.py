"""The embedded AWS emulator: moto's threaded server, in this process, on loopback.

In-process matters: the Lambda seam, the instance simulator and the EventBridge stand-ins reach
moto's backends directly, and the Step Functions interpreter runs in this process's threads.

Everything process-wide the server changes (moto config, ``MOTO_PORT``, the Step Functions
backend binding, moto patches) is undone by ``stop()``, so ``mock_aws`` tests running later in the
same process see stock moto.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import socket
import urllib.request
import uuid
from typing import Any

LOG = logging.getLogger(__name__)

ACCOUNT_ID = "123456789012"
_MISSING = object()


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def iter_backends(backend_dict: Any) -> list[tuple[str, str, Any]]:
    """(account, region, backend) for every backend moto has created so far.

    Uses plain ``dict`` access: ``BackendDict.__getitem__`` would create backends as a side
    effect, and iterating a live dict races with moto's request threads.
    """
    out = []
    for account, per_region in list(dict.items(backend_dict)):
        for region, backend in list(dict.items(per_region)):
            out.append((account, region, backend))
    return out


class _MotoPatches:
    """The process-wide moto changes the runtime needs, reversibly."""

    def __init__(self) -> None:
        self._saved: dict[str, Any] = {}

    def apply(self, port: int) -> None:
        import moto.stepfunctions.models as sfn_models
        from moto.core.config import default_user_config
        from moto.stepfunctions.parser.models import StepFunctionsParserBackend, stepfunctions_parser_backends

        self._saved = {
            "MOTO_PORT": os.environ.get("MOTO_PORT", _MISSING),
            "sfn_config": copy.deepcopy(default_user_config.get("stepfunctions", _MISSING)),
            "backends": sfn_models.stepfunctions_backends,
            "start_execution": StepFunctionsParserBackend.__dict__["start_execution"],
        }
        # Step Functions' interpreter calls Lambda (and other services) at
        # http://localhost:$MOTO_PORT (moto/stepfunctions/parser/asl/utils/boto_client.py:20).
        os.environ["MOTO_PORT"] = str(port)

        # CloudFormation-created state machines must land in the executing (parser) backend.
        # With ``execute_state_machine`` the Step Functions API reads
        # ``stepfunctions_parser_backends`` (moto/stepfunctions/responses.py:12-19), but
        # AWS::StepFunctions::StateMachine's CloudFormation hooks create/delete/update through the
        # module global ``moto.stepfunctions.models.stepfunctions_backends``
        # (moto/stepfunctions/models.py:291, 302, 334). Those are its only readers besides
        # responses.py (own reference, used only when execution is off) and the package's
        # re-export (moto/stepfunctions/__init__.py:1, unused by CloudFormation; the parsing
        # module imports the models module, moto/cloudformation/parsing.py:57, and resolves
        # the class through CloudFormationModel subclasses). Rebinding the global is enough;
        # it must happen before the deploy.
        sfn_models.stepfunctions_backends = stepfunctions_parser_backends  # type: ignore[assignment]

        # Unnamed executions get a UUID name, as on AWS: moto's executing backend formats the
        # ARN with ``name`` as given (moto/stepfunctions/parser/models.py:161-211), so a
        # StartExecution without a name yields ``...:<machine>:None`` and the second unnamed
        # start of a machine collides with the first.
        original = self._saved["start_execution"]

        def start_execution(self: Any, state_machine_arn: str, name: Any = None, *args: Any, **kwargs: Any) -> Any:
            return original(self, state_machine_arn, name or str(uuid.uuid4()), *args, **kwargs)

        StepFunctionsParserBackend.start_execution = start_execution  # type: ignore[method-assign]

    def enable_asl_execution(self, endpoint_url: str) -> None:
        # Through the documented endpoint (moto/moto_api/_internal/responses.py:391-406).
        request = urllib.request.Request(
            f"{endpoint_url}/moto-api/config",
            data=json.dumps({"stepfunctions": {"execute_state_machine": True}}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
            response.read()

    def undo(self) -> None:
        if not self._saved:
            return
        import moto.stepfunctions.models as sfn_models
        from moto.core.config import default_user_config
        from moto.stepfunctions.parser.models import StepFunctionsParserBackend

        port = self._saved["MOTO_PORT"]
        if port is _MISSING:
            os.environ.pop("MOTO_PORT", None)
        else:
            os.environ["MOTO_PORT"] = port
        config = self._saved["sfn_config"]
        if config is _MISSING:
            default_user_config.pop("stepfunctions", None)
        else:
            default_user_config["stepfunctions"] = config
        sfn_models.stepfunctions_backends = self._saved["backends"]
        StepFunctionsParserBackend.start_execution = self._saved["start_execution"]  # type: ignore[method-assign]
        self._saved = {}


class EmulatorServer:
    """moto ``ThreadedMotoServer`` on ``host:port`` with real ASL execution enabled."""

    def __init__(self, port: int = 4566, host: str = "127.0.0.1", *, quiet: bool = True) -> None:
        self.host = host
        self.requested_port = port
        self.port = port
        self.quiet = quiet
        self._server: Any = None
        self._patches = _MotoPatches()
        self._log_levels: dict[str, int] = {}

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        from moto.moto_server.threaded_moto_server import ThreadedMotoServer

        quiet_loggers = {"werkzeug": logging.WARNING}  # one INFO line per request otherwise
        if self.quiet:
            # Expected task failures (ResourcePending retries) are logged by moto's interpreter at
            # ERROR with the whole state's repr; the execution history has them anyway.
            quiet_loggers["moto.stepfunctions.parser.asl.component.eval_component"] = logging.CRITICAL
        for name, level in quiet_loggers.items():
            logger = logging.getLogger(name)
            self._log_levels[name] = logger.level
            logger.setLevel(level)
        self.port = self.requested_port or free_port(self.host)
        self._patches.apply(self.port)
        try:
            self._server = ThreadedMotoServer(ip_address=self.host, port=self.port, verbose=False)
            self._server.start()
            self._patches.enable_asl_execution(self.endpoint_url)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.stop()
            # ThreadedMotoServer.stop() shuts the loop down but leaves the socket open.
            inner = getattr(server, "_server", None)
            if inner is not None:
                inner.server_close()
        self._patches.undo()
        for name, level in self._log_levels.items():
            logging.getLogger(name).setLevel(level)
        self._log_levels = {}
