"""YAML text of what an instance is given (kubeadm's configuration, the add-on manifests, the
cloud-config), emitted by libyaml when PyYAML has it.

libyaml's emitter writes the same bytes as PyYAML's pure-Python one for every document kubestep
renders (tests/bootstrap/test_yaml_text.py renders every shape of instance both ways), at a
fraction of the CPU: the launch-template steps render a bundle per replica and node pool, and
the pure-Python emitter was most of their time. The bytes matter: a bundle is named by its
SHA-256, so a different emitter would make every launch template look changed."""

from __future__ import annotations

from typing import Any

import yaml

SafeDumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # type: ignore[assignment]


def documents(found: list[dict[str, Any]]) -> str:
    """Block-style YAML documents, keys in the order written (`---` between documents)."""
    return yaml.dump_all(found, Dumper=SafeDumper, sort_keys=False, default_flow_style=False)


def sorted_document(found: dict[str, Any]) -> str:
    """One block-style YAML document, keys sorted."""
    return yaml.dump(found, Dumper=SafeDumper, default_flow_style=False)


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


def literal_dumper(base: type[yaml.SafeDumper]) -> type[yaml.SafeDumper]:
    """`base` writing multi-line strings as literal blocks (file contents: readable, and what
    `cloud-init query` shows)."""
    dumper = type(f"Literal{base.__name__}", (base,), {})
    dumper.add_representer(str, _string)
    return dumper


LiteralDumper = literal_dumper(SafeDumper)


def cloud_config(found: dict[str, Any]) -> str:
    """A `#cloud-config` document: multi-line strings as literal blocks, keys in the order written."""
    return "#cloud-config\n" + yaml.dump(found, Dumper=LiteralDumper, sort_keys=False, width=200)
