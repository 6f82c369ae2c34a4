"""The version catalog (kubestep/data/kubernetes-versions.json) and the end-of-life rule.

Adding a Kubernetes minor is a data-only change: the catalog entry carries what the bootstrap pins
for it. These tests keep every entry complete and consistent, and move "today" explicitly to check
the end-of-life rule (the rest of the suite runs as of the catalog's own date, tests/conftest.py)."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from importlib import resources

import pytest

from kubestep import versions
from kubestep.bootstrap import components
from kubestep.errors import InvalidSpec
from kubestep.validation import parse_create_request
from tests.unit.test_models import SERVICE, request

RAW = json.loads(resources.files("kubestep").joinpath("data/kubernetes-versions.json").read_text())
MINOR_FIELDS = {"latestPatch", "endOfLife", "pause", "cloudControllerManager", "calico", "digests"}
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


@pytest.fixture
def on(monkeypatch):
    """Run as of a given date."""

    def set_today(day: date | str) -> None:
        monkeypatch.setenv(versions.TODAY_ENV, str(day))

    return set_today


def test_every_minor_entry_is_complete_and_pins_what_the_bootstrap_needs():
    for name, entry in RAW["minors"].items():
        assert re.fullmatch(r"1\.\d+", name), name
        assert set(entry) == MINOR_FIELDS, f"{name}: {sorted(set(entry) ^ MINOR_FIELDS)}"
        minor = int(name.split(".")[1])
        assert minor >= 31, "kubeadm's v1beta4 configuration, which the bootstrap renders, first shipped in 1.31"
        date.fromisoformat(entry["endOfLife"])
        assert re.fullmatch(r"3\.\d+(\.\d+)?", entry["pause"]), name
        # The cloud controller manager is released per Kubernetes minor and must match it.
        assert re.fullmatch(rf"v1\.{minor}\.\d+", entry["cloudControllerManager"]), name
        assert entry["calico"] in RAW["calico"], f"{name}: Calico {entry['calico']} has no pinned manifest"
        assert components.pause(minor).tagged.endswith(":" + entry["pause"])
        assert components.cloud_controller_manager(minor).tagged.endswith(":" + entry["cloudControllerManager"])
        url, digest = components.calico_manifest(minor)
        assert entry["calico"] in url and re.fullmatch(r"[0-9a-f]{64}", digest)
        # A digest, where known, pins the same image the tag names (or is null: pulled by tag).
        assert set(entry["digests"]) == {"pause", "cloudControllerManager"}, name
        for image, pinned in entry["digests"].items():
            assert pinned is None or DIGEST.fullmatch(pinned), f"{name} {image}: {pinned!r}"
        if entry["digests"]["pause"]:
            assert components.pause_image(minor).endswith(f":{entry['pause']}@{entry['digests']['pause']}")


def test_every_calico_release_names_its_images_with_a_digest_or_none():
    for release, entry in RAW["calico"].items():
        assert re.fullmatch(r"[0-9a-f]{64}", entry["manifestSHA256"]), release
        assert entry["images"], f"Calico {release}: list the images its manifest names"
        for tagged, digest in entry["images"].items():
            assert tagged.endswith(":" + release), f"Calico {release}: {tagged} is another release's image"
            assert digest is None or DIGEST.fullmatch(digest), f"{tagged}: {digest!r}"
    assert re.fullmatch(r"\d+\.\d+", RAW["packageRevision"])


def test_minors_are_consecutive_and_end_of_life_dates_follow_their_order():
    minors = sorted(versions.catalog().minors.values(), key=lambda m: m.minor)
    assert [m.minor for m in minors] == list(range(minors[0].minor, minors[-1].minor + 1))
    ends = [date.fromisoformat(m.end_of_life) for m in minors]
    assert ends == sorted(ends) and len(set(ends)) == len(ends)


def test_channels_name_minors_that_are_supported_as_of_the_catalog_date():
    catalog = versions.catalog()
    as_of = date.fromisoformat(catalog.as_of)
    assert set(catalog.channels) == set(versions.CHANNELS)
    for channel, minor in catalog.channels.items():
        assert not catalog.minors[minor].past_end_of_life(as_of), f"channel {channel} follows an end-of-life minor"
    assert catalog.channels["stable"] <= catalog.channels["regular"] <= catalog.channels["rapid"]


def test_supported_minors_are_those_before_their_end_of_life(on):
    on("2026-12-05")
    assert versions.supported_minors() == (35, 36, 37)
    assert versions.installable_minors() == (34, 35, 36, 37)  # 1.34 clusters still roll and upgrade
    on("2027-02-28")  # 1.35's end-of-life day
    assert versions.supported_minors() == (36, 37)
    on(date(2027, 10, 28) + timedelta(days=1))
    assert versions.supported_minors() == ()
    assert "out of date" in versions.supported_names()


def test_a_create_on_an_end_of_life_minor_is_refused_naming_the_supported_ones(on):
    on("2026-12-05")
    body = request(cluster__spec__controlPlane__version="1.34.13")
    body["nodePools"] = []
    with pytest.raises(InvalidSpec) as refused:
        parse_create_request(SERVICE, body)
    message = str(refused.value)
    assert "cluster.spec.controlPlane.version" in message
    assert "1.34 reached its end of life on 2026-10-27" in message and "1.35, 1.36, 1.37" in message


def test_a_new_node_pool_on_an_end_of_life_minor_is_refused(on):
    on("2026-12-05")
    body = request(cluster__spec__controlPlane__version="1.35.4", nodePools__0__spec__version="1.34.13")
    with pytest.raises(InvalidSpec) as refused:
        parse_create_request(SERVICE, body)
    assert "nodePools[0].spec.version: Kubernetes 1.34 reached its end of life" in str(refused.value)


def test_upgrades_may_leave_an_end_of_life_minor_but_never_move_to_one(on):
    on("2026-12-05")
    assert versions.upgrade_problem("1.34.10", "1.35.9") is None  # leaving it: the way out
    assert versions.upgrade_problem("1.34.10", "1.34.13") is None  # a patch within it still installs
    on("2027-03-01")  # 1.35 has ended too
    assert "1.35 reached its end of life" in versions.upgrade_problem("1.34.13", "1.35.9")
    assert versions.upgrade_problem("1.35.4", "1.36.5") is None


def test_a_cluster_on_an_end_of_life_minor_is_warned_with_the_way_out(on):
    on("2026-12-05")
    warning = versions.end_of_life_warning("1.34.13")
    assert warning and "2026-10-27" in warning and "upgrade to 1.35" in warning
    assert versions.end_of_life_warning("1.35.4") is None


def test_the_server_config_view_says_which_minors_are_supported(on):
    on("2026-12-05")
    view = versions.catalog().as_view()
    supported = {m["minor"]: m["supported"] for m in view["minors"]}
    assert supported == {"1.37": True, "1.36": True, "1.35": True, "1.34": False}
