"""Guard the moto internals the runtime patches: if moto changes them, fail here, loudly."""

from __future__ import annotations

import inspect
import io
import json
import zipfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest

from kubestep_local import moto_compat
from kubestep_local.runtime import LocalRuntime

GUARD_CODE = """
class CustomError(Exception):
    pass


def handler(event, context):
    if event.get("raise"):
        raise CustomError("asked to raise")
    return {"echo": event, "name": context.function_name, "req": context.aws_request_id}
"""


def test_moto_is_the_pinned_version() -> None:
    assert version("moto") == "5.2.5", "the Lambda seam and ASL patches are verified against moto 5.2.5"
    assert moto_compat.check_moto_version() == moto_compat.PINNED_MOTO_VERSION == "5.2.5"


def test_another_moto_version_is_refused_with_a_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(moto_compat, "version", lambda name: "5.3.0")
    with pytest.raises(moto_compat.MotoVersionError) as raised:
        moto_compat.check_moto_version()
    assert str(raised.value) == (
        "the local runtime patches moto's internals and is verified against moto 5.2.5 only; "
        "moto 5.3.0 is installed (pip install 'moto[server]==5.2.5')"
    )

    def missing(name: str) -> str:
        raise PackageNotFoundError(name)

    monkeypatch.setattr(moto_compat, "version", missing)
    with pytest.raises(
        moto_compat.MotoVersionError, match=r"needs the `local` extra \(pip install -e '\.\[local\]' in /"
    ):
        moto_compat.check_moto_version()


def test_only_the_compatibility_package_imports_moto() -> None:
    """Every reach into moto goes through the kubestep_local/moto_compat/ package."""
    import ast

    package = Path(moto_compat.__file__).parent
    assert package.name == "moto_compat"
    offenders = []
    for module in sorted(package.parent.glob("*.py")):  # kubestep_local's modules, not the package's
        for node in ast.walk(ast.parse(module.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{module.name}: {name}" for name in names if name.split(".")[0] == "moto"]
    assert not offenders


def _patches_applied() -> list[tuple[str, str]]:
    """(module, function) of every patch the runtime's groups apply (moto_compat/__init__.py),
    and of the seams it applies on its own."""
    import ast

    tree = ast.parse(Path(moto_compat.__file__).read_text())
    groups = ("fix_interpreter_bugs", "match_aws_semantics", "fix_moto_performance", "model_latency")
    called = [
        (node.func.value.id, node.func.attr)
        for group in tree.body
        if isinstance(group, ast.FunctionDef) and group.name in groups
        for node in ast.walk(group)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name)
    ]
    return called + [
        ("stepfunctions", "bind_step_functions"),
        ("awslambda", "route_lambda_invocations"),
        ("autoscaling", "emulate_lifecycle_hooks"),
    ]


def test_each_patch_names_what_moto_does_and_what_aws_does() -> None:
    """Each patch says which moto behaviour it corrects and the AWS documentation it follows (or
    that it changes only how fast moto answers), and is short."""
    import importlib
    import re

    applied = _patches_applied()
    assert len(applied) >= 20
    for module_name, function_name in applied:
        function = getattr(importlib.import_module(f"kubestep_local.moto_compat.{module_name}"), function_name)
        doc = " ".join((inspect.getdoc(function) or "").split())
        assert "moto" in doc, f"{module_name}.{function_name}: its docstring does not say what moto does"
        assert re.search(r"API reference|user guide|developer guide|speed fix only", doc, re.I), (
            f"{module_name}.{function_name}: its docstring names no AWS documentation"
        )


def test_no_function_of_the_compatibility_package_is_long() -> None:
    import ast

    long = []
    for module in sorted(Path(moto_compat.__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno - node.lineno >= 60:
                long.append(f"{module.name}: {node.name} ({node.end_lineno - node.lineno + 1} lines)")
    assert not long


def test_invoke_lambda_signature_and_contract() -> None:
    import ast

    import moto.awslambda.models as lambda_models

    # Read moto's source: while a runtime runs, the class attributes are our replacements.
    source = inspect.getsource(lambda_models)
    tree = ast.parse(source)
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "LambdaFunction")
    methods = {n.name: n for n in cls.body if isinstance(n, ast.FunctionDef)}
    invoke_lambda = methods["_invoke_lambda"]
    assert [a.arg for a in invoke_lambda.args.args] == ["self", "event"]
    assert ast.unparse(invoke_lambda.returns) == "tuple[str, bool, str]"
    assert [a.arg for a in methods["invoke"].args.args] == [
        "self",
        "body",
        "request_headers",
        "response_headers",
    ]
    # invoke() unpacks (payload, errored, logs) and marks errors with x-amz-function-error.
    invoke_source = ast.unparse(methods["invoke"])
    assert "res, errored, logs = self._invoke_lambda(event=body)" in invoke_source
    assert "x-amz-function-error" in invoke_source


def test_asl_call_sites_exist() -> None:
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction
    from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    assert "time.sleep(interval_seconds)" in inspect.getsource(retrier_decl.RetrierDecl._eval_body)
    assert "_wait_interval" in WaitFunction.__dict__
    assert callable(lambda_eval_utils.execute_lambda_function_integration)
    assert callable(lambda_eval_utils.boto_client_for)
    assert callable(BaseExecutionWorkerCommunication.terminated)
    assert list(inspect.signature(StepFunctionsParserBackend.start_execution).parameters)[:3] == [
        "self",
        "state_machine_arn",
        "name",
    ]
    import moto.stepfunctions.models as sfn_models

    source = inspect.getsource(sfn_models.StateMachine.create_from_cloudformation_json)
    assert "stepfunctions_backends[account_id][region_name]" in source


def test_interpreter_invoke_call_sites() -> None:
    """What the in-process route of the interpreter's Lambda tasks replaces and mimics."""
    import ast

    from moto.awslambda.responses import LambdaResponse
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils

    # moto's source, not the attributes: while a runtime runs, those are the replacements.
    tree = ast.parse(inspect.getsource(lambda_eval_utils))
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert [a.arg for a in functions["_invoke_lambda_function"].args.args] == [
        "parameters",
        "region",
        "state_credentials",
    ]
    assert "_invoke_lambda_function(" in ast.unparse(functions["execute_lambda_function_integration"])
    assert "_from_payload" in functions
    # The server reads the qualifier as `qualifier` (query string, then the JSON body), answers
    # with the backend's payload and caps its size: the in-process route does the same.
    source = inspect.getsource(LambdaResponse.invoke)
    assert 'self._get_param("qualifier")' in source
    assert "self.backend.invoke(" in source and "sys.getsizeof(payload) > 6000000" in source


@pytest.fixture(scope="module")
def guard_function(runtime: LocalRuntime) -> str:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("guard.py", GUARD_CODE)
    iam = runtime.boto3_client("iam")
    role = iam.create_role(RoleName="guard-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    runtime.boto3_client("lambda").create_function(
        FunctionName="guard",
        Runtime="python3.13",
        Role=role,
        Handler="guard.handler",
        Code={"ZipFile": buffer.getvalue()},
        Environment={"Variables": {"GUARD": "1"}},
    )
    return "guard"


def test_real_invoke_returns_the_handler_payload(runtime: LocalRuntime, guard_function: str) -> None:
    response = runtime.boto3_client("lambda").invoke(
        FunctionName=guard_function, Payload=json.dumps({"x": 1, "operationId": "op-1"})
    )
    assert "FunctionError" not in response
    payload = json.loads(response["Payload"].read())
    assert payload["echo"] == {"x": 1, "operationId": "op-1"}
    assert payload["name"] == "guard"
    counts = runtime.recorder.invocation_counts()
    assert counts[("guard", "op-1")] == 1


def test_raised_error_is_unhandled_function_error(runtime: LocalRuntime, guard_function: str) -> None:
    response = runtime.boto3_client("lambda").invoke(FunctionName=guard_function, Payload=b'{"raise": true}')
    assert response["FunctionError"] == "Unhandled"
    payload = json.loads(response["Payload"].read())
    assert payload["errorType"] == "CustomError"
    assert payload["errorMessage"] == "asked to raise"
    assert any("guard.py" in line for line in payload["stackTrace"])
