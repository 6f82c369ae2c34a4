"""Manifest files (YAML or JSON, several documents per file) into API requests, refusing
anything doubtful before a single request is sent: every document is read, bounded
(`kubestep.cli.safe_yaml`) and validated with the same pydantic models the API uses, and one
error line names each problem with its document, line and field."""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import Node, ScalarNode

from kubestep import versions
from kubestep.cli.errors import InputError
from kubestep.cli.safe_yaml import MAX_DOCUMENT_BYTES, MAX_FILE_BYTES, load_all, node_index
from kubestep.suggest import did_you_mean

# The pydantic models (kubestep.models, kubestep.validation, kubestep.views) are imported where
# a manifest is read or validated: `kubestep -h` imports this module too.
APPLICABLE_KINDS = ("AWSCluster", "AWSNodePool")
# The API refuses request bodies over this (kubestep.api.app.MAX_BODY_BYTES; a test keeps them equal).
MAX_REQUEST_BYTES = MAX_DOCUMENT_BYTES
_NOT_APPLIED = {
    "AWSManagementService": "is deployed with `cdk deploy` (cdk.json's kubestep:managementService), not applied",
}


# ---------------------------------------------------------------- documents


@dataclass
class Document:
    """One non-empty document of a file, with the nodes it was built from (for line numbers)."""

    source: str
    number: int  # 1-based position in the file
    data: Any
    nodes: dict[tuple[Any, ...], Node]
    # metadata.uid of an object read back from the API (`get -o yaml`): the incarnation it names.
    uid: str | None = None
    # Set when documents of several files are read together: messages then name the file.
    show_source: bool = False

    @property
    def line(self) -> int:
        root = self.nodes.get(())
        return root.start_mark.line + 1 if root is not None else 1

    @property
    def kind(self) -> str | None:
        kind = self.data.get("kind") if isinstance(self.data, dict) else None
        return kind if isinstance(kind, str) else None

    @property
    def name(self) -> str | None:
        metadata = self.data.get("metadata") if isinstance(self.data, dict) else None
        name = metadata.get("name") if isinstance(metadata, dict) else None
        return name if isinstance(name, str) and name else None

    @property
    def cluster_name(self) -> str | None:
        spec = self.data.get("spec") if isinstance(self.data, dict) else None
        cluster = spec.get("clusterName") if isinstance(spec, dict) else None
        return cluster if isinstance(cluster, str) and cluster else None

    @property
    def label(self) -> str:
        """`AWSCluster prod`, `AWSNodePool prod/general`, or `document 2` while it has no name."""
        if self.kind and self.name:
            shown = (
                f"{self.cluster_name}/{self.name}" if self.kind == "AWSNodePool" and self.cluster_name else self.name
            )
            return f"{_quoted(self.kind)} {_quoted(shown)}"
        return f"document {self.number}"

    def line_of(self, path: tuple[Any, ...]) -> int:
        """The line of `path`, or of its nearest parent that is in the file (a missing field)."""
        for end in range(len(path), -1, -1):
            node = self.nodes.get(tuple(path[:end]))
            if node is not None:
                return node.start_mark.line + 1
        return self.line

    @property
    def where(self) -> str:
        """The document's label, with its file when several files are read together."""
        return f"{self.source}: {self.label}" if self.show_source else self.label

    def problem(self, path: tuple[Any, ...], rule: str, error_type: str = "") -> str:
        from kubestep.validation import field_path

        where = f"{self.where}, line {self.line_of(path)}"
        name = field_path(path) if path else ""
        return f"{where}: {name + ': ' if name else ''}{rule}{self.hint(path, error_type)}"

    def hint(self, path: tuple[Any, ...], error_type: str) -> str:
        """What YAML made of an unquoted value, when that is why a field is refused."""
        node = self.nodes.get(path)
        if not isinstance(node, ScalarNode) or node.style not in (None, ""):  # plain, not quoted
            return ""
        tag = node.tag.rsplit(":", 1)[-1]
        if tag == "null" and error_type in ("model_type", "dict_type", "string_type", "list_type", "missing"):
            return " (it is empty: YAML reads a key with no value as null)"
        if error_type == "string_type" and tag in ("int", "float", "bool"):
            what = {"int": "a number", "float": "a number", "bool": "a boolean"}[tag]
            return f' (YAML read the unquoted {node.value} as {what}: quote it, "{node.value}")'
        return ""


def _quoted(value: str) -> str:
    return value if value.replace("-", "").replace("/", "").isalnum() and len(value) <= 80 else repr(value[:80])


def read_text(path: str) -> str:
    """The file's text, refusing what cannot be a manifest before reading much of it."""
    if path == "-":
        data = sys.stdin.buffer.read(MAX_FILE_BYTES + 1)
        shown = "standard input"
    else:
        shown = path
        try:
            info = os.stat(path)
        except FileNotFoundError:
            raise InputError(f"{path}: no such file") from None
        except OSError as exc:
            raise InputError(f"{path}: cannot read it ({exc.strerror or exc})") from None
        if stat.S_ISDIR(info.st_mode):
            raise InputError(f"{path}: is a directory")
        if stat.S_ISREG(info.st_mode) and info.st_size > MAX_FILE_BYTES:
            raise InputError(
                f"{path}: {info.st_size} bytes is more than a manifest file may hold ({MAX_FILE_BYTES} bytes)"
            )
        try:
            with open(path, "rb") as handle:
                data = handle.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            raise InputError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    if len(data) > MAX_FILE_BYTES:
        raise InputError(f"{shown}: more than a manifest file may hold ({MAX_FILE_BYTES} bytes)")
    if b"\x00" in data:
        raise InputError(f"{shown}: is not a text file (it holds binary data)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{shown}: is not UTF-8 text (byte {exc.start})") from None


def _yaml_error(source: str, exc: yaml.YAMLError) -> InputError:
    line = getattr(exc, "line", None)
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        if mark is not None:
            line = mark.line + 1
        problem = " ".join(part for part in (exc.context, exc.problem) if part)
        return InputError(f"{source}: line {line}: not valid YAML: {problem}" if line else f"{source}: {problem}")
    message = str(exc).replace("\n", " ")
    return InputError(f"{source}: line {line}: refused: {message}" if line else f"{source}: refused: {message}")


MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


def manifest_files(path: str, *, recursive: bool = False) -> list[str]:
    """kubectl's rules for `-f`: a file (or `-`, standard input) as it is; a directory's .yaml,
    .yml and .json files in name order, and with `recursive` its subdirectories' too, each where
    its name falls (a depth-first walk in name order)."""
    if path == "-" or not os.path.isdir(path):
        return [path]
    found: list[str] = []

    def walk(directory: str) -> None:
        for name in sorted(os.listdir(directory)):
            full = os.path.join(directory, name)
            if os.path.isdir(full):
                if recursive:
                    walk(full)
            elif name.endswith(MANIFEST_SUFFIXES):
                found.append(full)

    try:
        walk(path)
    except OSError as exc:
        raise InputError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    if not found:
        deeper = "" if recursive else "; -R reads its subdirectories too"
        raise InputError(f"{path}: no manifest files (.yaml, .yml, .json) in this directory{deeper}")
    return found


def _without_server_fields(data: Any) -> tuple[Any, str | None]:
    """An object as `kubestep get -o yaml` prints it, less what the API sets (kubestep.views:
    SERVER_SET_FIELDS), and the uid it carried."""
    from kubestep.views import SERVER_SET_FIELDS

    if not isinstance(data, dict):
        return data, None
    metadata = data.get("metadata")
    uid = metadata.get("uid") if isinstance(metadata, dict) else None
    cleaned = dict(data)
    for path in SERVER_SET_FIELDS:
        parent = cleaned
        for key in path[:-1]:
            child = parent.get(key)
            if not isinstance(child, dict):
                break
            parent[key] = child = dict(child)
            parent = child
        else:
            parent.pop(path[-1], None)
    return cleaned, uid if isinstance(uid, str) else None


def _documents(source: str, number: int, node: Node, data: Any) -> list[Document]:
    """The document, or the objects of a list of them (what `get -o yaml` prints for several)."""
    index = node_index(node)
    if isinstance(data, list) and data and all(isinstance(item, dict) for item in data):
        items = []
        for position, item in enumerate(data):
            nodes = {path[1:]: found for path, found in index.items() if path and path[0] == position}
            cleaned, uid = _without_server_fields(item)
            items.append(Document(source, number, cleaned, nodes, uid))
        return items
    cleaned, uid = _without_server_fields(data)
    return [Document(source, number, cleaned, index, uid)]


def load(path: str) -> list[Document]:
    """Every non-empty document of the file; an empty file is an error (a typo'd path or a file
    emptied by mistake must not "apply" nothing and succeed)."""
    source = "standard input" if path == "-" else path
    text = read_text(path)
    try:
        loaded = load_all(text)
    except yaml.YAMLError as exc:
        raise _yaml_error(source, exc) from None
    except RecursionError:
        raise InputError(f"{source}: refused: nested too deeply") from None
    documents = [
        doc
        for number, (node, data) in enumerate(loaded, start=1)
        if data is not None
        for doc in _documents(source, number, node, data)
    ]
    if not documents:
        raise InputError(f"{source}: no documents: the file is empty or holds only comments")
    problems = []
    for doc in documents:
        if not isinstance(doc.data, dict):
            problems.append(
                doc.problem((), f"must be a mapping with apiVersion, kind, metadata and spec, not {_type(doc.data)}")
            )
    if problems:
        raise InputError(f"{source}: " + "; ".join(problems))
    return documents


def load_paths(paths: Sequence[str], *, recursive: bool = False) -> list[Document]:
    """The documents of every `-f` (files, directories, `-`), in order."""
    files = [file for path in paths for file in manifest_files(path, recursive=recursive)]
    if files.count("-") > 1:
        raise InputError("-f -: standard input can be read once")
    documents = [doc for file in files for doc in load(file)]
    if len(files) > 1:
        for doc in documents:
            doc.show_source = True
    return documents


def _refused(documents: list[Document], problems: list[str]) -> InputError:
    """One error naming every problem (after the file, when there is one file)."""
    sources = {doc.source for doc in documents}
    if len(sources) == 1:
        return InputError(f"{documents[0].source}: " + "; ".join(problems))
    return InputError("; ".join(problems))


def _skipped(documents: list[Document]) -> tuple[list[Document], list[str]]:
    """The documents apply and delete act on, and a note for each they leave alone (a management
    service is deployed with the CDK): `apply -f examples/` applies the cluster beside them."""
    kept, notes, refusals = [], [], []
    for doc in documents:
        if doc.kind in _NOT_APPLIED:
            notes.append(f"{doc.where} skipped: it {_NOT_APPLIED[doc.kind]}")
            refusals.append(doc.problem(("kind",), f"{doc.kind} {_NOT_APPLIED[doc.kind]}"))
        else:
            kept.append(doc)
    if not kept and notes:
        raise _refused(documents, refusals)
    return kept, notes


def _type(value: Any) -> str:
    return {list: "a list", str: "a string", bool: "a boolean", int: "a number", float: "a number"}.get(
        type(value), type(value).__name__
    )


# ---------------------------------------------------------------- validation and the plan


@dataclass
class ApplyPlan:
    clusters: list[dict] = field(default_factory=list)  # CreateClusterRequest bodies
    node_pools: list[dict] = field(default_factory=list)  # pools for clusters not in the file
    documents: list[Document] = field(default_factory=list)
    # The incarnation a cluster's document was read from (its metadata.uid), by cluster name.
    uids: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # documents left alone, and why


def _structure_problems(doc: Document) -> list[str]:
    data = doc.data
    problems = []
    if "apiVersion" not in data:
        from kubestep.models import API_VERSION

        problems.append(doc.problem(("apiVersion",), f"is required ({API_VERSION})", "missing"))
    kind = data.get("kind")
    if kind is None:
        problems.append(doc.problem(("kind",), "is required (AWSCluster or AWSNodePool)", "missing"))
    elif kind in _NOT_APPLIED:
        problems.append(doc.problem(("kind",), f"{kind} {_NOT_APPLIED[kind]}"))
    elif kind not in APPLICABLE_KINDS:
        problems.append(doc.problem(("kind",), f"{str(kind)[:60]!r} cannot be applied (AWSCluster or AWSNodePool)"))
    return problems


def _model_problems(doc: Document) -> list[str]:
    from pydantic import ValidationError

    from kubestep import manifest_schema, models
    from kubestep.validation import problems_from_errors

    try:
        applicable = {"AWSCluster": models.AWSCluster, "AWSNodePool": models.AWSNodePool}
        applicable[doc.data["kind"]].model_validate(doc.data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            [(_, rule)] = problems_from_errors([error])
            if error["type"] == "extra_forbidden":  # a typo, most likely: name the field it resembles
                *parent, name = error["loc"]
                rule += did_you_mean(str(name), manifest_schema.known_fields(doc.data["kind"], parent))
            problems.append(doc.problem(tuple(error["loc"]), rule, error["type"]))
        return problems
    return []


def validate(documents: list[Document]) -> ApplyPlan:
    """Validate every document, then the file as a whole; raise one InputError naming every
    problem, or return the requests to send."""
    from pydantic import ValidationError

    from kubestep.models import CreateClusterRequest
    from kubestep.validation import problems_from_errors

    everything = documents
    documents, notes = _skipped(documents)
    problems: list[str] = []
    valid: list[Document] = []
    max_node_pools = CreateClusterRequest.model_fields["node_pools"].metadata[0].max_length
    for doc in documents:
        found = _structure_problems(doc) or _model_problems(doc)
        problems += found
        if not found:
            valid.append(doc)

    # The same object twice: which one would win is not the user's intent, whatever it is.
    first: dict[tuple[str, str], Document] = {}
    for doc in valid:
        key = (doc.kind or "", doc.label)
        if key in first:
            earlier = first[key]
            if doc.show_source:
                where = f"{earlier.source} line {earlier.line} and {doc.source} line {doc.line}"
            else:
                where = f"lines {earlier.line} and {doc.line}"
            problems.append(f"{doc.label} appears twice ({where})")
        else:
            first[key] = doc

    clusters = {doc.name: doc for doc in valid if doc.kind == "AWSCluster"}
    pools_by_cluster: dict[str, list[Document]] = {}
    result = ApplyPlan(documents=documents, notes=notes)
    for doc in valid:
        if doc.kind != "AWSNodePool":
            continue
        cluster = clusters.get(doc.cluster_name)
        if cluster is None:
            result.node_pools.append(doc.data)
            continue
        pools_by_cluster.setdefault(cluster.name or "", []).append(doc)
        skew = versions.node_pool_skew_problem(
            cluster.data["spec"]["controlPlane"]["version"], doc.data["spec"]["version"]
        )
        if skew:
            problems.append(doc.problem(("spec", "version"), skew))

    for name, cluster in clusters.items():
        pools = pools_by_cluster.get(name or "", [])
        body = {"cluster": cluster.data, "nodePools": [p.data for p in pools]}
        if cluster.uid:
            result.uids[name or ""] = cluster.uid
        if len(pools) > max_node_pools:
            problems.append(
                f"{cluster.where}: at most {max_node_pools} node pools per cluster (the file has {len(pools)})"
            )
        elif not problems:
            # The request as a whole (what the API validates); per-document rules were checked above.
            try:
                CreateClusterRequest.model_validate(body)
            except ValidationError as exc:
                for error in exc.errors(include_url=False):
                    [(path, rule)] = problems_from_errors([error])
                    problems.append(f"{cluster.where}: {'' if path == '(input)' else path + ': '}{rule}")
        size = len(json.dumps(body).encode())
        if size > MAX_REQUEST_BYTES:
            problems.append(
                f"{cluster.where}: its request would be {size // 1024} KiB, more than the API's "
                f"{MAX_REQUEST_BYTES // 1024} KiB"
            )
        result.clusters.append(body)
    if problems:
        raise _refused(everything, problems)
    return result


def load_plan(paths: str | Sequence[str], *, recursive: bool = False) -> ApplyPlan:
    return validate(load_paths([paths] if isinstance(paths, str) else paths, recursive=recursive))


def identify(documents: list[Document]) -> tuple[list[Document], list[str]]:
    """What `delete -f` needs: a kind it knows and a name for every document (the rest of each
    document is not checked: deleting needs no valid spec), and the notes of what it leaves alone."""
    everything = documents
    documents, notes = _skipped(documents)
    problems = []
    for doc in documents:
        problems += _structure_problems(doc)
        if doc.name is None:
            problems.append(doc.problem(("metadata", "name"), "is required", "missing"))
        if doc.kind == "AWSNodePool" and doc.cluster_name is None:
            problems.append(doc.problem(("spec", "clusterName"), "is required", "missing"))
    if problems:
        raise _refused(everything, problems)
    return documents, notes


# ---------------------------------------------------------------- what `kubestep demo` uses


def read_documents(path: str) -> list[dict[str, Any]]:
    """The file's validated documents as plain data."""
    return [doc.data for doc in load_plan(path).documents]


def plan(docs: list[dict[str, Any]], source: str = "manifest") -> ApplyPlan:
    """The requests for documents that `read_documents` returned (validated)."""
    documents = [Document(source, i, doc, {}) for i, doc in enumerate(docs, start=1)]
    return validate(documents)
