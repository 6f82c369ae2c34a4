"""The local runtime's base zygotes: one per code zip imports what its functions share once and
forks their zygotes, each of which then runs with its function's environment only (what Lambda
gives it). The pools are run for real (base, function zygotes, forks, socket protocol) on an asset
of their own; the project's own shared imports are checked on a base started from this checkout.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import time
import zipfile
from pathlib import Path

from kubestep_local.moto_compat import FunctionInfo
from kubestep_local.worker_pool import (
    DEFAULT_PROJECT_PACKAGES,
    DEFAULT_SHARED_IMPORTS,
    BaseZygote,
    WorkerPools,
    import_time_env,
    read_at_import,
)

ROOT = Path(__file__).resolve().parents[2]

# What the base imports for every function: it notes the process and the environment it was
# imported in.
SHARED = """
import os
import signal
import time

IMPORTED_BY = os.getpid()
ENVIRONMENT_AT_IMPORT = dict(os.environ)
VERSION = {version!r}
"""

HANDLER = """
import os
import signal
import time
import sys

from probe import shared

# This function's own import, in its zygote: it sees the function's setting.
SETTING_AT_IMPORT = os.environ.get("PROBE_SETTING")


def handler(event, context):
    return {{
        "function": {name!r},
        "pid": os.getpid(),
        "environment": dict(os.environ),
        "setting_at_import": SETTING_AT_IMPORT,
        "shared_imported_by": shared.IMPORTED_BY,
        "shared_environment": shared.ENVIRONMENT_AT_IMPORT,
        "shared_version": shared.VERSION,
        "other_handler_loaded": any(name.startswith("probe.fn_") and name != __name__ for name in sys.modules),
    }}
"""


def _code(version: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("probe/__init__.py", "")
        archive.writestr("probe/shared.py", SHARED.format(version=version))
        for name in ("fn_a", "fn_b"):
            archive.writestr(f"probe/{name}.py", HANDLER.format(name=name))
    return buffer.getvalue()


def _function(name: str, code: bytes, environment: dict[str, str], runtime: str = "python3.13") -> FunctionInfo:
    return FunctionInfo(
        *(name, f"arn:aws:lambda:us-east-1:123456789012:function:{name}", "123456789012", "us-east-1"),
        *(f"probe.{name}.handler", runtime, "$LATEST", 128, 30.0, f"/aws/lambda/{name}"),
        hashlib.sha256(code).hexdigest(),
        environment,
        code_zip=code,
    )


def _pools(tmp_path: Path) -> WorkerPools:
    return WorkerPools(
        "http://127.0.0.1:1",
        workdir=tmp_path,
        log_dir=tmp_path / "logs",
        project_packages=("probe",),
        shared_imports=("probe.shared",),
        extra_env={"PROBE_LOCAL_ONLY": "1"},
    )


def _invoke(pools: WorkerPools, fn: FunctionInfo) -> dict:
    context = {"function_name": fn.name, "invoked_function_arn": fn.arn, "aws_request_id": "r1"}
    reply, _cold = pools.invoke(fn, {"event": "{}", "context": context}, timeout=60)
    assert reply is not None and not reply["errored"], reply
    return json.loads(reply["payload"])


def test_functions_of_one_code_zip_share_its_base_and_see_only_their_own_environment(tmp_path):
    code = _code("v1")
    fn_a = _function("fn_a", code, {"PROBE_SETTING": "a", "ONLY_A": "1"})
    fn_b = _function("fn_b", code, {"PROBE_SETTING": "b"})
    pools = _pools(tmp_path)
    try:
        a, b = _invoke(pools, fn_a), _invoke(pools, fn_b)
        [base_pid] = [pid for base in pools._bases.values() for pid in base.pids()]
    finally:
        pools.close()
    # The shared module was imported once, by the base, before either function zygote forked.
    assert a["shared_imported_by"] == b["shared_imported_by"] == base_pid
    assert base_pid not in (a["pid"], b["pid"])
    # What the base ran with: the import-time part of the environment, none of a function's own.
    assert set(a["shared_environment"]) == set(import_time_env(pools.function_env(fn_a)))
    assert "PROBE_SETTING" not in a["shared_environment"]
    # Each function's environment is exactly what the pools give it, read at its own import too.
    assert a["environment"] == pools.function_env(fn_a)
    assert b["environment"] == pools.function_env(fn_b)
    assert "ONLY_A" not in b["environment"]
    assert (a["setting_at_import"], b["setting_at_import"]) == ("a", "b")
    assert not a["other_handler_loaded"] and not b["other_handler_loaded"]


def test_an_import_time_variable_or_a_new_code_zip_gets_a_base_of_its_own(tmp_path):
    code = _code("v1")
    fn_a = _function("fn_a", code, {})
    # Powertools reads AWS_EXECUTION_ENV when it is imported (its user agent): another runtime is
    # another base.
    fn_b = _function("fn_b", code, {}, runtime="python3.12")
    pools = _pools(tmp_path)
    try:
        first_a, b = _invoke(pools, fn_a), _invoke(pools, fn_b)
        assert first_a["shared_imported_by"] != b["shared_imported_by"]
        assert b["shared_environment"]["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.12"
        old_bases = pools.pids()
        # A new code zip for fn_a: new zygotes from a new base, which imported the new code.
        new_a = _invoke(pools, _function("fn_a", _code("v2"), {}))
        assert (first_a["shared_version"], new_a["shared_version"]) == ("v1", "v2")
        assert new_a["shared_imported_by"] not in (first_a["shared_imported_by"], b["shared_imported_by"])
        assert new_a["pid"] != first_a["pid"]
    finally:
        pools.close()
    assert first_a["shared_imported_by"] in old_bases


def test_the_projects_shared_imports_read_only_what_their_base_is_given_and_start_no_thread(tmp_path):
    """A base started from this checkout (as if it were the deployed asset) with the project's
    shared imports: every variable they read at import time is one the base gets from the
    function's environment, and it forks with one thread and no connection (its control socket
    is its only socket)."""
    env = {**os.environ, "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13"}
    base = BaseZygote(ROOT, DEFAULT_PROJECT_PACKAGES, DEFAULT_SHARED_IMPORTS, import_time_env(env), tmp_path / "b.log")
    try:
        base._ensure()
        [pid] = base.pids()
        sockets = [
            fd for fd in os.listdir(f"/proc/{pid}/fd") if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
        ]
        threads = os.listdir(f"/proc/{pid}/task")
    finally:
        base.close()
    assert "kubestep.flow.dispatch" in DEFAULT_SHARED_IMPORTS and base.env_read  # it did import them
    assert [name for name in base.env_read if not read_at_import(name)] == []
    assert len(threads) == 1
    assert len(sockets) == 1


def test_a_dead_base_leaves_its_function_zygotes_running_and_is_replaced_when_one_is_needed(tmp_path):
    code = _code("v1")
    fn_a = _function("fn_a", code, {})
    pools = _pools(tmp_path)
    try:
        first = _invoke(pools, fn_a)
        [base] = pools._bases.values()
        os.kill(first["shared_imported_by"], signal.SIGKILL)
        base._process.wait()
        # The function's zygote and warm worker live on their own sockets to the runtime.
        assert _invoke(pools, fn_a)["pid"] == first["pid"]
        [pool] = pools.pools()
        os.kill(pool._zygote.pid, signal.SIGKILL)
        pool._zygote.wait()
        deadline = time.monotonic() + 10
        while Path(f"/proc/{first['pid']}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)  # its worker dies with it (PDEATHSIG)
        again = _invoke(pools, fn_a)
    finally:
        pools.close()
    assert again["pid"] != first["pid"]
    assert again["shared_imported_by"] != first["shared_imported_by"]
