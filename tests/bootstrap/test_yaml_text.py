"""libyaml's emitter writes what PyYAML's pure-Python emitter writes, byte for byte, for every
file an instance is given: a bundle is named by its SHA-256 and a launch template by its
user-data, so an emitter that changed one byte would make every cluster's templates look changed
(and a Lambda runtime without libyaml must render the same bundles)."""

from __future__ import annotations

import pytest
import yaml

from kubestep.bootstrap import BundleRef, render_bundle, render_cloud_config, yaml_text
from kubestep.bootstrap.cloud_init import files
from tests.bootstrap.conftest import variants

VARIANTS = variants()


def rendered(params) -> dict[str, str]:
    """Every file of an instance of `params`, the cloud-config and the bundle's digest."""
    packed = render_bundle(params)
    ref = BundleRef("bucket", packed.key(params.uid), packed.sha256)
    return {
        **{f.path: f.content for f in files(params, ref)},
        "cloud-config": render_cloud_config(params, ref),
        "bundle-sha256": packed.sha256,
    }


def test_the_emitter_is_libyaml_when_pyyaml_has_it():
    assert yaml.__with_libyaml__, "PyYAML without libyaml: this module would compare an emitter with itself"
    assert yaml_text.SafeDumper is yaml.CSafeDumper
    assert issubclass(yaml_text.LiteralDumper, yaml.CSafeDumper)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_libyaml_and_pure_python_render_the_same_bytes(name, monkeypatch):
    params = VARIANTS[name]
    fast = rendered(params)
    monkeypatch.setattr(yaml_text, "SafeDumper", yaml.SafeDumper)
    monkeypatch.setattr(yaml_text, "LiteralDumper", yaml_text.literal_dumper(yaml.SafeDumper))
    pure = rendered(params)
    assert fast.keys() == pure.keys()
    for path in fast:
        assert fast[path] == pure[path], f"{path} differs between libyaml and PyYAML's emitter"


def test_multi_line_strings_are_literal_blocks_in_both_emitters():
    config = {"write_files": [{"path": "/x", "content": "a\nb\n"}, {"path": "/y", "content": "one line"}]}
    expected = "#cloud-config\nwrite_files:\n- path: /x\n  content: |\n    a\n    b\n- path: /y\n  content: one line\n"
    assert yaml_text.cloud_config(config) == expected
    assert yaml.dump(config, Dumper=yaml_text.literal_dumper(yaml.SafeDumper), sort_keys=False, width=200) == (
        expected.removeprefix("#cloud-config\n")
    )
