"""The bootstrap bundles in the emulator: the launch template steps upload each instance's bundle
to the service's bucket under its cluster incarnation's prefix, named by its SHA-256, which the
launch template's user-data carries; the instance simulator boots an instance only if it can read
that object with the instance's role and its digest matches (as the real loader does), else the
instance reports `failed:bundle`, the create fails and its rollback deletes the bundles too."""

from __future__ import annotations

import hashlib
import time

from kubestep import inventory
from kubestep.bootstrap import bundle
from kubestep_local import moto_compat

from .conftest import ha_request

CLUSTER = "tampered"
HELD_WAIT = 240.0


def _await_held(runtime) -> list[str]:
    deadline = time.monotonic() + HELD_WAIT
    while not (held := runtime.simulator.held()):
        assert time.monotonic() < deadline, "no replica instance was launched"
        time.sleep(0.2)
    return held


def test_an_instance_whose_bundle_does_not_match_fails_as_the_loader_does_and_the_rollback_deletes_it(
    runtime, store
) -> None:
    bucket = runtime.outputs["BackupBucketName"]
    s3 = runtime.boto3_client("s3")
    hold = runtime.simulator.hold_boots(CLUSTER, replica=0)
    arn = runtime.start_execution("CreateCluster", ha_request(CLUSTER), name=f"{CLUSTER}-create")
    try:
        instance_id = _await_held(runtime)[0]
        uid = store.clusters.get(CLUSTER).uid
        ref = bundle.reference(moto_compat.instance_user_data(runtime.region, instance_id))
        assert ref is not None and ref.bucket == bucket
        assert ref.key == bundle.object_key(uid, ref.sha256)
        uploaded = s3.get_object(Bucket=bucket, Key=ref.key)["Body"].read()
        assert hashlib.sha256(uploaded).hexdigest() == ref.sha256
        assert "/usr/local/sbin/kubestep-bootstrap" in bundle.unpack(uploaded)
        # Someone replaces the object: the instance must refuse it.
        s3.put_object(Bucket=bucket, Key=ref.key, Body=uploaded + b"\0")
    finally:
        runtime.simulator.release_boots(hold)
    result = runtime.wait_execution(arn, timeout=600)
    assert (result["status"], result.get("error")) == ("FAILED", "BootstrapFailed"), result.get("cause")
    warnings = [e.message for e in store.events.list(CLUSTER) if e.type == "Warning"]
    assert any("replica 0" in m and "bundle" in m for m in warnings), warnings
    left = inventory.cluster_resources(uid, runtime.boto3_client, store, bucket)
    assert inventory.count(left) == 0, left
    assert s3.list_objects_v2(Bucket=bucket, Prefix=bundle.cluster_prefix(uid)).get("KeyCount") == 0
    assert (
        runtime.run_execution("DeleteCluster", {"clusterName": CLUSTER}, name=f"{CLUSTER}-delete", check=False)[
            "status"
        ]
        == "SUCCEEDED"
    )
