"""The etcd backup bucket as synthesized: encrypted with the service's key, versioned, closed to
the public and to plain HTTP, retained with the stack, and expiring snapshots by their tag."""

from __future__ import annotations

from typing import Any

from kubestep import backups


def _bucket(template: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    found = [(k, r) for k, r in template["Resources"].items() if r["Type"] == "AWS::S3::Bucket"]
    assert len(found) == 1, "one bucket: the service's backups"
    return found[0]


def test_encrypted_with_the_service_key_versioned_private_and_retained(synthesized_template):
    logical_id, bucket = _bucket(synthesized_template)
    props = bucket["Properties"]
    key = next(k for k, r in synthesized_template["Resources"].items() if r["Type"] == "AWS::KMS::Key")
    (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms",
        "KMSMasterKeyID": {"Fn::GetAtt": [key, "Arn"]},
    }
    assert rule["BucketKeyEnabled"] is True
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert bucket["DeletionPolicy"] == "Retain" and bucket["UpdateReplacePolicy"] == "Retain"
    outputs = synthesized_template["Outputs"]
    assert outputs["BackupBucketName"]["Value"] == {"Ref": logical_id}


def test_the_bucket_policy_refuses_every_request_without_tls(synthesized_template):
    logical_id, _ = _bucket(synthesized_template)
    policies = [
        r["Properties"]["PolicyDocument"]["Statement"]
        for r in synthesized_template["Resources"].values()
        if r["Type"] == "AWS::S3::BucketPolicy" and r["Properties"]["Bucket"] == {"Ref": logical_id}
    ]
    assert len(policies) == 1
    (deny,) = [s for s in policies[0] if s["Effect"] == "Deny"]
    assert deny["Action"] == "s3:*" and deny["Principal"] == {"AWS": "*"}
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_each_allowed_retention_has_its_expiry_rule_and_nothing_outlives_the_longest(synthesized_template):
    _, bucket = _bucket(synthesized_template)
    rules = {r["Id"]: r for r in bucket["Properties"]["LifecycleConfiguration"]["Rules"]}
    for days in backups.RETENTION_DAYS:
        rule = rules[f"retain-{days}d"]
        assert rule["Status"] == "Enabled" and rule["Prefix"] == "backups/"
        assert rule["TagFilters"] == [{"Key": backups.RETENTION_TAG, "Value": str(days)}]
        assert rule["ExpirationInDays"] == days
        assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": backups.NONCURRENT_DAYS}
    catch_all = rules["retain-at-most"]
    assert "TagFilters" not in catch_all and catch_all["ExpirationInDays"] == max(backups.RETENTION_DAYS)
    assert catch_all["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    assert rules["expired-delete-markers"]["ExpiredObjectDeleteMarker"] is True


def test_the_functions_are_told_the_bucket(synthesized_template):
    logical_id, _ = _bucket(synthesized_template)
    functions = [r for r in synthesized_template["Resources"].values() if r["Type"] == "AWS::Lambda::Function"]
    told = [
        f for f in functions if "KUBESTEP_BACKUP_BUCKET" in f["Properties"].get("Environment", {}).get("Variables", {})
    ]
    assert told and all(
        f["Properties"]["Environment"]["Variables"]["KUBESTEP_BACKUP_BUCKET"] == {"Ref": logical_id} for f in told
    )
