"""The API takes JSON: a value of another type is refused naming its field, never coerced
(`true` is not 1 node, `"3"` not 3, `"false"` not false); a long value is cut in the message;
node labels a kubelet may not set on itself are refused before anything starts."""

from __future__ import annotations

import copy

import pytest

from kubestep.store import Store

from .conftest import example_body, executions, register_running
from .helpers import call


@pytest.mark.parametrize("value", [True, "3", 3.0])
def test_a_number_of_another_type_is_refused(api: Store, value) -> None:
    register_running(api)
    answer = call("PATCH", "/v1/clusters/prod/nodepools/general", body={"maxNodeCount": value})
    assert answer.status == 400 and answer.fields == {"maxNodeCount"}, answer.text
    assert executions("UpdateNodePool") == []


@pytest.mark.parametrize("value", ["false", 0])
def test_a_boolean_of_another_type_is_refused(api: Store, value) -> None:
    body = {**example_body(), "rollbackOnFailure": value}
    answer = call("POST", "/v1/clusters", body=body)
    assert answer.status == 400 and answer.fields == {"rollbackOnFailure"}, answer.text
    assert call("POST", "/v1/orphans:sweep", body={"dryRun": value}).status == 400
    assert executions("CreateCluster") == [] and executions("SweepOrphans") == []


def test_a_long_value_is_named_not_echoed(api: Store) -> None:
    register_running(api)
    answer = call("POST", "/v1/clusters/prod/upgrade", body={"version": "1." + "9" * 6000})
    assert answer.status == 400 and answer.fields == {"version"}, answer.text[:300]
    assert len(answer.text) < 1000 and "9" * 100 not in answer.text


@pytest.mark.parametrize("key", ["kubernetes.io/role", "node-role.kubernetes.io/worker"])
def test_labels_the_kubelet_refuses_are_refused(api: Store, key: str) -> None:
    register_running(api)
    pool = copy.deepcopy(example_body()["nodePools"][0])
    pool["metadata"]["name"] = "extra"
    pool["spec"]["labels"] = {key: ""}
    created = call("POST", "/v1/clusters/prod/nodepools", body=pool)
    assert created.status == 400 and created.fields == {"spec.labels"}, created.text
    patched = call("PATCH", "/v1/clusters/prod/nodepools/general", body={"labels": {key: "x"}})
    assert patched.status == 400 and patched.fields == {"labels"}, patched.text
    assert executions("CreateNodePool") == [] and executions("UpdateNodePool") == []
