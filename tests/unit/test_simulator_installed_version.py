"""The local instance simulator reports the Kubernetes version an instance's user-data installs,
read as the real bootstrap reads it: `KUBERNETES_VERSION` of the settings file its gzipped
cloud-config writes."""

from __future__ import annotations

import base64
import gzip

import yaml

from kubestep_local.instances import installed_version


def _user_data(files: list[dict], compress: bool = True) -> str:
    text = ("#cloud-config\n" + yaml.safe_dump({"write_files": files})).encode()
    return base64.b64encode(gzip.compress(text) if compress else text).decode()


def test_the_version_comes_from_the_settings_file_of_the_cloud_config() -> None:
    env = "# shellcheck shell=bash\nTABLE=kubestep-demo\nKUBERNETES_VERSION=1.36.5\nKUBERNETES_MINOR=1.36\n"
    files = [
        {"path": "/usr/local/sbin/kubestep-bootstrap", "content": "KUBERNETES_VERSION=9.9.9\n"},
        {"path": "/etc/kubestep/bootstrap.env", "content": env},
    ]
    assert installed_version(_user_data(files)) == "1.36.5"
    assert installed_version(_user_data(files, compress=False)) == "1.36.5"
    quoted = [{"path": "/etc/kubestep/bootstrap.env", "content": "KUBERNETES_VERSION='1.35.4'\n"}]
    assert installed_version(_user_data(quoted)) == "1.35.4"


def test_user_data_without_a_version_reports_none() -> None:
    assert installed_version(None) is None
    assert installed_version("") is None
    assert installed_version("not base64 at all!") is None
    assert installed_version(base64.b64encode(b"#!/bin/sh\necho hi\n").decode()) is None
    assert installed_version(_user_data([{"path": "/etc/other.env", "content": "KUBERNETES_VERSION=1.0.0\n"}])) is None
