"""Field schemas derived from upstream Kubernetes types, and a strict checker for documents.

`schemas/kubeadm.k8s.io-v1beta4.json` and `schemas/kubelet.config.k8s.io-v1beta1.json` hold the
JSON field names and Go types of kubeadm's and the kubelet's published API types (each file
names its upstream source and commit; `scripts/derive_go_schema.py` derives the format), and
the values of the string types upstream enumerates in a const block (EncryptionAlgorithmType). The
bootstrap refuses kubelet settings that are not KubeletConfiguration fields, and the tests check
every rendered document against these schemas, so a misspelt or invented field or value fails here
instead of on an instance (kubeadm's strict decoding would reject it at boot)."""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources
from typing import Any

KUBEADM = "kubeadm.k8s.io-v1beta4"
KUBELET = "kubelet.config.k8s.io-v1beta1"

INTEGER = re.compile(r"^u?int(8|16|32|64)?$")
SCALARS = {"string": str, "bool": bool, "float32": (int, float), "float64": (int, float)}
# Types serialised as strings (durations, timestamps, enums, quantities, the token string).
STRING_LIKE = {
    "metav1.Duration",
    "metav1.Time",
    "corev1.PullPolicy",
    "corev1.HostPathType",
    "EncryptionAlgorithmType",
    "bootstraptokenv1.BootstrapTokenString",
    "HairpinMode",
    "ResourceChangeDetectionStrategy",
    "ImagePullCredentialsVerificationPolicy",
}


@cache
def load(name: str) -> dict[str, Any]:
    text = resources.files("kubestep.bootstrap").joinpath("schemas", f"{name}.json").read_text()
    return json.loads(text)


def fields_of(schema: dict[str, Any], type_name: str) -> dict[str, str]:
    """Every JSON field of a struct, inlined (embedded) structs included."""
    definition = schema["types"][type_name]
    fields = dict(definition["fields"])
    for embedded in definition["inline"]:
        if embedded in schema["types"]:
            fields.update(fields_of(schema, embedded))
    return fields


def _check(schema: dict[str, Any], go_type: str, value: Any, path: str, problems: list[str]) -> None:
    go_type = go_type.lstrip("*")
    if go_type == "opaque":
        return
    if go_type.startswith("[]"):
        if not isinstance(value, list):
            problems.append(f"{path}: expected a list ({go_type})")
            return
        for i, item in enumerate(value):
            _check(schema, go_type[2:], item, f"{path}[{i}]", problems)
        return
    if go_type.startswith("map["):
        if not isinstance(value, dict):
            problems.append(f"{path}: expected a map ({go_type})")
            return
        element = go_type[go_type.index("]") + 1 :]
        for key, item in value.items():
            _check(schema, element, item, f"{path}.{key}", problems)
        return
    if go_type in SCALARS:
        if not isinstance(value, SCALARS[go_type]) or (go_type != "bool" and isinstance(value, bool)):
            problems.append(f"{path}: expected {go_type}, got {type(value).__name__}")
        return
    if INTEGER.match(go_type):
        if not isinstance(value, int) or isinstance(value, bool):
            problems.append(f"{path}: expected {go_type}, got {type(value).__name__}")
        return
    if go_type in STRING_LIKE:
        if not isinstance(value, str):
            problems.append(f"{path}: expected a string ({go_type}), got {type(value).__name__}")
        elif value not in schema.get("enums", {}).get(go_type, (value,)):
            allowed = ", ".join(schema["enums"][go_type])
            problems.append(f"{path}: {value!r} is not one of {go_type}'s values ({allowed})")
        return
    if go_type not in schema["types"]:
        # A type of another package the schema does not describe (e.g. resource quantities,
        # logging options): its presence was checked one level up; its inside is not.
        return
    if not isinstance(value, dict):
        problems.append(f"{path}: expected an object ({go_type})")
        return
    fields = fields_of(schema, go_type)
    for key, item in value.items():
        if key not in fields:
            problems.append(f"{path}.{key}: no such field in {go_type}")
            continue
        _check(schema, fields[key], item, f"{path}.{key}", problems)


def problems(schema_name: str, document: dict[str, Any]) -> list[str]:
    """What in `document` is not in the upstream types: unknown kinds, fields or wrong types."""
    schema = load(schema_name)
    kind = document.get("kind")
    if kind not in schema["kinds"]:
        return [f"kind {kind!r} is not one of {sorted(schema['kinds'])}"]
    if document.get("apiVersion") != schema["kinds"][kind]:
        return [f"{kind}: apiVersion must be {schema['kinds'][kind]} (got {document.get('apiVersion')!r})"]
    found: list[str] = []
    _check(schema, kind, document, kind, found)
    return found


def enum(schema_name: str, type_name: str) -> tuple[str, ...]:
    """The values upstream declares for a string type (its const block), e.g. EncryptionAlgorithmType."""
    return tuple(load(schema_name)["enums"][type_name])


def kubelet_fields() -> dict[str, str]:
    return fields_of(load(KUBELET), "KubeletConfiguration")
