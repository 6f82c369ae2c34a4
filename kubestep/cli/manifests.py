"""Reading manifest files (YAML or JSON, several documents per file) into API requests."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kubestep.errors import InvalidSpec


@dataclass
class ApplyPlan:
    clusters: list[dict] = field(default_factory=list)  # CreateClusterRequest bodies
    node_pools: list[dict] = field(default_factory=list)  # pools for clusters not in the file


def read_documents(path: str) -> list[dict[str, Any]]:
    text = sys.stdin.read() if path == "-" else Path(path).read_text()
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise InvalidSpec([(path, f"is not valid YAML/JSON: {exc}")]) from None
    for i, doc in enumerate(docs):
        if not isinstance(doc, dict) or "kind" not in doc:
            raise InvalidSpec([(f"{path}[{i}]", "each document needs apiVersion, kind, metadata and spec")])
    return docs


def plan(docs: list[dict[str, Any]], source: str = "manifest") -> ApplyPlan:
    result = ApplyPlan()
    clusters = {d.get("metadata", {}).get("name"): d for d in docs if d["kind"] == "AWSCluster"}
    pools_by_cluster: dict[str, list[dict]] = {}
    for i, doc in enumerate(docs):
        kind = doc["kind"]
        if kind == "AWSNodePool":
            cluster = (doc.get("spec") or {}).get("clusterName")
            if cluster in clusters:
                pools_by_cluster.setdefault(cluster, []).append(doc)
            else:
                result.node_pools.append(doc)
        elif kind != "AWSCluster":
            raise InvalidSpec([(f"{source}[{i}].kind", f"{kind!r} cannot be applied (AWSCluster or AWSNodePool)")])
    for name, cluster in clusters.items():
        result.clusters.append({"cluster": cluster, "nodePools": pools_by_cluster.get(name, [])})
    return result


def dumps(data: Any, fmt: str) -> str:
    if fmt == "yaml":
        return yaml.safe_dump(data, sort_keys=False)
    return json.dumps(data, indent=2)
