#!/usr/bin/env python3
"""Derive a field schema from a Kubernetes Go API types file.

The bootstrap's tests check every rendered kubeadm/kubelet document against the fields that
exist upstream. This reads the Go struct definitions of one `types.go` (for example
`config/v1beta1/types.go` of k8s.io/kubelet at a release tag) and prints JSON:

    {"source": ..., "types": {"KubeletConfiguration": {"fields": {"maxPods": "int32", ...},
                                                      "inline": ["metav1.TypeMeta"]}, ...},
     "enums": {"EncryptionAlgorithmType": ["ECDSA-P256", "RSA-2048", ...], ...}}

Usage: derive_go_schema.py TYPES_GO SOURCE_DESCRIPTION KIND=API_VERSION... > schema.json
e.g. in a k8s.io/kubelet clone: `git show v0.31.0:config/v1beta1/types.go > /tmp/types.go`, then
`derive_go_schema.py /tmp/types.go "k8s.io/kubelet v0.31.0 ..." KubeletConfiguration=kubelet.config.k8s.io/v1beta1`.
Only the struct shapes are kept: field JSON names and Go types, no code or comments; and the
string values a named type's `const` block declares (`Name Type = "value"`), its enum."""

from __future__ import annotations

import json
import re
import sys

STRUCT_START = re.compile(r"^type\s+(\w+)\s+struct\s*\{\s*$")
FIELD = re.compile(r"^\s*(\w+)\s+([^\s`]+)\s+`([^`]*)`")
EMBEDDED = re.compile(r"^\s*\*?([\w.]+)\s*(`([^`]*)`)?\s*$")
JSON_TAG = re.compile(r'json:"([^"]*)"')
TYPED_STRING_CONST = re.compile(r'^\s*\w+\s+(\w+)\s*=\s*"([^"]*)"\s*$')


def derive(source: str) -> dict[str, dict]:
    types: dict[str, dict] = {}
    current: dict | None = None
    for raw in source.splitlines():
        line = raw.split("//", 1)[0].rstrip()
        if current is None:
            match = STRUCT_START.match(line)
            if match:
                current = types.setdefault(match.group(1), {"fields": {}, "inline": []})
            continue
        if line.strip() == "}":
            current = None
            continue
        if not line.strip():
            continue
        field = FIELD.match(line)
        if field:
            name, go_type, tags = field.groups()
            tag = JSON_TAG.search(tags)
            json_name = tag.group(1).split(",")[0] if tag else name
            if tag and ",inline" in tag.group(1) and not json_name:
                current["inline"].append(go_type)
            elif json_name != "-":
                current["fields"][json_name] = go_type
            continue
        embedded = EMBEDDED.match(line)
        if embedded:
            tag = JSON_TAG.search(embedded.group(3) or "")
            if tag is None or tag.group(1).split(",")[0] == "":
                current["inline"].append(embedded.group(1))
    return types


def derive_enums(source: str) -> dict[str, list[str]]:
    """Each named type's string constants, in declaration order (`const ( Name Type = "value" )`)."""
    enums: dict[str, list[str]] = {}
    in_const = False
    for raw in source.splitlines():
        line = raw.split("//", 1)[0].rstrip()
        if line.strip() == "const (":
            in_const = True
        elif in_const and line.strip() == ")":
            in_const = False
        elif in_const and (match := TYPED_STRING_CONST.match(line)):
            enums.setdefault(match.group(1), []).append(match.group(2))
    return enums


def main() -> None:
    path, source, *kinds = sys.argv[1:]
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    types = derive(text)
    # Every top-level kind embeds apimachinery's TypeMeta.
    types["metav1.TypeMeta"] = {"fields": {"apiVersion": "string", "kind": "string"}, "inline": []}
    document = {"source": source, "kinds": dict(kind.split("=", 1) for kind in kinds), "types": types}
    enums = derive_enums(text)
    if enums:
        document["enums"] = enums
    json.dump(document, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
