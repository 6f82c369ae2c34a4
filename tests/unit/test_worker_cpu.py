"""The local runtime's Lambda workers and their CPU: a worker's profile (KUBESTEP_LOCAL_PROFILE:
cProfile's statistics of its invocations, in CPU time, where the variable says; without it,
nothing), and the zygote's heap frozen before each fork (out of the workers' garbage
collections). The pool is run for real (zygote, fork, socket protocol) on a handler of its own."""

from __future__ import annotations

import json
import os
import pstats
from pathlib import Path

from kubestep_local.moto_compat import FunctionInfo
from kubestep_local.worker_pool import PROFILE_ENV, CalledServices, FunctionPool, WorkerPools

HANDLER = """
import gc


def handler(event, context):
    return {"sum": busy(event["n"]), "frozen": gc.get_freeze_count()}


def busy(n):
    return sum(i * i for i in range(n))
"""


SUM = sum(i * i for i in range(300_000))


def _invoke(tmp_path: Path, env: dict[str, str]) -> dict:
    """The probe's answer to one invocation on a fresh pool of one worker."""
    asset = tmp_path / "asset"
    (asset / "probe").mkdir(parents=True)
    (asset / "probe" / "__init__.py").write_text(HANDLER)
    pool = FunctionPool("probe-fn", asset, ["probe"], "probe.handler", env, 1, tmp_path / "probe.log")
    context = {"function_name": "probe-fn", "invoked_function_arn": "arn:aws:lambda:::probe-fn", "aws_request_id": "r1"}
    try:
        reply, _cold = pool.invoke({"event": json.dumps({"n": 300_000}), "context": context}, timeout=60)
    finally:
        pool.close()
    assert reply is not None and not reply["errored"], reply
    return json.loads(reply["payload"])


def test_a_worker_writes_the_cpu_profile_of_its_invocations_where_asked(tmp_path):
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    assert _invoke(tmp_path, {**os.environ, PROFILE_ENV: str(profiles)})["sum"] == SUM
    [written] = profiles.glob("probe-fn-*.prof")
    stats = pstats.Stats(str(written)).stats  # type: ignore[attr-defined]
    busy = next(timing for (_file, _line, name), timing in stats.items() if name == "busy")
    assert busy[3] > 0  # its cumulative CPU time


def test_without_the_variable_a_worker_writes_no_profile(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != PROFILE_ENV}
    assert _invoke(tmp_path, env)["sum"] == SUM
    assert not list(tmp_path.rglob("*.prof"))


def test_the_pools_hand_the_variable_to_every_function(tmp_path, monkeypatch):
    monkeypatch.setenv(PROFILE_ENV, str(tmp_path / "profiles"))
    pools = WorkerPools("http://127.0.0.1:1", workdir=tmp_path, log_dir=tmp_path)
    fn = FunctionInfo(
        *("demo-api", "arn:aws:lambda:us-east-1:123456789012:function:demo-api", "123456789012", "us-east-1"),
        *("lambdas.api.handler", "python3.13", "$LATEST", 512, 30.0, "/aws/lambda/demo-api", "sha", {}),
        code_zip=b"",
    )
    assert pools.function_env(fn)[PROFILE_ENV] == str(tmp_path / "profiles")


def test_a_worker_inherits_the_zygotes_heap_frozen(tmp_path):
    # The handler's imports and botocore's: none of them in the worker's collections.
    assert _invoke(tmp_path, dict(os.environ))["frozen"] > 10_000


CLIENT_HANDLER = """
import os
import time

from botocore.stub import Stubber

from kubestep import aws


def handler(event, context):
    region = os.environ["AWS_REGION"]
    inherited = aws.client.cache_info().currsize
    start = time.process_time()
    s3 = aws.client("s3", region)
    made = time.process_time() - start
    pools = len(s3._endpoint.http_session._manager.pools)  # urllib3's connection pools so far
    with Stubber(s3) as stub:  # a call the pool records (service s3), answered without a server
        stub.add_response("list_buckets", {"Buckets": []})
        s3.list_buckets()
    return {"inherited": inherited, "pools": pools, "cpu_ms": made * 1000, "pid": os.getpid()}
"""


def test_a_fresh_worker_starts_with_the_clients_of_the_services_its_pool_called_and_no_connection(tmp_path):
    """The first worker builds its s3 client and calls s3; the next worker forked finds the
    zygote's s3 client ready (no client to build), with no connection pool opened in it."""
    asset = tmp_path / "asset"
    (asset / "probe").mkdir(parents=True)
    (asset / "probe" / "__init__.py").write_text(CLIENT_HANDLER)
    env = {**os.environ, "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    pool = FunctionPool("probe-fn", asset, ["probe"], "probe.handler", env, 2, tmp_path / "probe.log")
    context = {"function_name": "probe-fn", "invoked_function_arn": "arn:aws:lambda:::probe-fn", "aws_request_id": "r"}
    request = {"event": "{}", "context": context}
    try:
        first, cold = pool.invoke(request, timeout=60)
        assert cold and first is not None and not first["errored"], first
        pool.prewarm(2)  # a second worker, forked after the first one's s3 call
        second, cold = pool.invoke(request, timeout=60)
        assert not cold and second is not None and not second["errored"], second
    finally:
        pool.close()
    built, ready = json.loads(first["payload"]), json.loads(second["payload"])
    assert built["pid"] != ready["pid"]
    assert (built["inherited"], ready["inherited"]) == (0, 1)
    assert ready["pools"] == built["pools"] == 0
    print(f"s3 client in a fresh worker: {built['cpu_ms']:.2f} ms CPU built, {ready['cpu_ms']:.3f} ms inherited")


def test_a_functions_first_worker_starts_with_the_clients_of_what_the_runtimes_other_functions_called(tmp_path):
    """Pools that share their called services (a runtime's do): the second function's first
    worker finds the s3 client the first function's worker needed ready in its zygote."""
    asset = tmp_path / "asset"
    (asset / "probe").mkdir(parents=True)
    (asset / "probe" / "__init__.py").write_text(CLIENT_HANDLER)
    env = {**os.environ, "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    services = CalledServices()
    pools = [
        FunctionPool(name, asset, ["probe"], "probe.handler", env, 1, tmp_path / f"{name}.log", services=services)
        for name in ("probe-one", "probe-two")
    ]
    answers = []
    try:
        for pool in pools:
            context = {"function_name": pool.name, "invoked_function_arn": f"arn:aws:lambda:::{pool.name}"}
            reply, cold = pool.invoke({"event": "{}", "context": {**context, "aws_request_id": "r"}}, timeout=60)
            assert cold and reply is not None and not reply["errored"], reply
            answers.append(json.loads(reply["payload"]))
    finally:
        for pool in pools:
            pool.close()
    assert services.names() == ["s3"]
    assert [answer["inherited"] for answer in answers] == [0, 1]
