"""schemathesis against the API's own OpenAPI document, through a loopback HTTP server that turns
requests into API Gateway proxy events for `lambdas.api.handler` (in this process, on moto).

A cluster `prod` with node pools, events and a finished operation is seeded, and the document's
path examples name them, so the 200 answers are checked too. The run must find no 5xx, no
undeclared status, no answer that breaks its declared schema, no wrong
content type, and no schema-invalid request accepted."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from kubestep.api.app import openapi_document
from kubestep.store import Operation, Store
from tests.api.conftest import example_body, management_service, register
from tests.api.helpers import LocalGateway

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics")

MAX_EXAMPLES = 15
# The local gateway checks that a signature is present, as API Gateway does (it does not verify it).
SIGNED = {"Authorization": "AWS4-HMAC-SHA256 Credential=AKIDTEST/20260101/us-east-1/execute-api/aws4_request"}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
# What the gateway answered, by method and status, over the whole run (printed with -s).
ANSWERS: Counter[str] = Counter()

schema = schemathesis.openapi.from_dict(
    openapi_document(),
    config=schemathesis.Config.from_dict(
        {
            "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True},
            # An in-process answer, but on a busy machine one took more than the default 10 s.
            "request-timeout": 60,
            "checks": {"not_a_server_error": {"expected-statuses": ["2xx", "3xx", "4xx"]}},
        }
    ),
)


@pytest.fixture
def gateway(api: Store) -> Iterator[LocalGateway]:
    with seeded_gateway(api) as server:
        yield server


@contextmanager
def seeded_gateway(api: Store) -> Iterator[LocalGateway]:
    record = register(api, example_body(), "create-seeded-1")
    api.operations.create(
        Operation(operation_id="create-seeded-1", kind="CreateCluster", target="prod", uid=record.uid)
    )
    api.operations.finish("create-seeded-1", "SUCCEEDED")
    api.clusters.update("prod", phase="RUNNING", endpoint="gke-abcd1234-cp.elb.amazonaws.com", current_operation=None)
    api.events.record("prod", "Normal", "Running", "cluster prod is RUNNING", "AWSCluster/prod", "create-seeded-1")
    with LocalGateway(require_auth=True) as server:
        yield server
    ANSWERS.update(f"{r['method']} {r['status']}" for r in server.requests)


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
def test_api_conforms_to_its_openapi_document(case: schemathesis.Case, gateway: LocalGateway) -> None:
    # A case whose headers are the invalid part may lack the Authorization the document requires:
    # adding the signature back would turn it into a valid request the API rightly accepts.
    header = case.meta.components.get(ParameterLocation.HEADER) if case.meta else None
    negative_headers = header is not None and header.mode == GenerationMode.NEGATIVE
    unsigned = negative_headers and not (case.headers or {}).get("Authorization")
    # A generous read timeout: a create's dry run validates against the emulator in this process,
    # and on a loaded 2-core machine that can exceed the HTTP client's 10 s default.
    case.call_and_validate(base_url=gateway.url, checks=CHECKS, headers=None if unsigned else SIGNED, timeout=60)


def test_the_run_reached_the_function_and_its_successful_answers() -> None:
    """Guards the run itself: most requests got past the gateway, and 2xx answers were checked.
    Run without the tests above in this process (alone, or with them spread over other workers),
    it makes the same run first."""
    if not _reached_every_kind(ANSWERS):
        ANSWERS.clear()
        for result in schema.get_all_operations():
            with pytest.MonkeyPatch.context() as patch, management_service(patch) as api, seeded_gateway(api) as server:
                _conforms(result.ok(), server.url)
    print(f"\nschemathesis: {sum(ANSWERS.values())} requests: {dict(sorted(ANSWERS.items()))}")
    assert _reached_every_kind(ANSWERS)
    assert sum(n for key, n in ANSWERS.items() if key.endswith(" 403")) < sum(ANSWERS.values()) / 2


def _reached_every_kind(answers: Any) -> bool:
    return bool(answers["GET 200"] and answers["POST 202"] and answers["DELETE 202"])


def _conforms(operation: Any, url: str) -> None:
    """test_api_conforms_to_its_openapi_document's run of one operation: its explicit examples
    (which name the seeded cluster), then generated cases."""
    examples = schema.get_strategies_from_examples(operation)
    strategy = st.one_of(*examples, operation.as_strategy()) if examples else operation.as_strategy()

    @given(case=strategy)
    @settings(max_examples=MAX_EXAMPLES, derandomize=True, deadline=None, database=None)
    def run(case: schemathesis.Case) -> None:
        case.call_and_validate(base_url=url, checks=CHECKS, headers=SIGNED)

    run()
