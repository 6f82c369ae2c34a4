"""kubestep_local/moto_compat/s3.py: moto's CloudFormation deploys the backup bucket's policy, as
CloudFormation does (AWS CloudFormation User Guide, "AWS::S3::BucketPolicy"): put on the bucket
with the stack, deleted with it. Without it moto skips the type, and the emulator's bucket would
take plain-HTTP requests the real one refuses."""

from __future__ import annotations

import json
import pickle

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from kubestep_local.moto_compat import PatchSet
from kubestep_local.moto_compat.s3 import (
    deploy_bucket_policies,
    deploy_bucket_versioning,
    evaluate_bucket_policies_as_aws,
)

TLS_ONLY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Action": "s3:*",
            "Resource": [
                {"Fn::GetAtt": ["Bucket", "Arn"]},
                {"Fn::Join": ["", [{"Fn::GetAtt": ["Bucket", "Arn"]}, "/*"]]},
            ],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    ],
}
TEMPLATE = {
    "Resources": {
        "Bucket": {"Type": "AWS::S3::Bucket", "Properties": {"VersioningConfiguration": {"Status": "Enabled"}}},
        "Policy": {
            "Type": "AWS::S3::BucketPolicy",
            "Properties": {"Bucket": {"Ref": "Bucket"}, "PolicyDocument": TLS_ONLY},
        },
    }
}


@mock_aws
def test_a_stacks_bucket_policy_is_put_on_its_bucket_and_deleted_with_it():
    deploy_bucket_policies()
    cloudformation = boto3.client("cloudformation", region_name="us-east-1")
    s3 = boto3.client("s3", region_name="us-east-1")
    cloudformation.create_stack(StackName="backups", TemplateBody=json.dumps(TEMPLATE))
    resources = cloudformation.describe_stack_resources(StackName="backups")["StackResources"]
    bucket = next(r["PhysicalResourceId"] for r in resources if r["LogicalResourceId"] == "Bucket")
    policy = next(r for r in resources if r["LogicalResourceId"] == "Policy")
    assert policy["PhysicalResourceId"] == bucket

    (statement,) = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])["Statement"]
    assert statement["Effect"] == "Deny" and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert statement["Resource"] == [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]

    # The runtime's snapshots pickle the stack's resources, this one included.
    model = pickle.loads(pickle.dumps(deploy_bucket_policies()(bucket, "123456789012", "us-east-1")))
    assert model.physical_resource_id == bucket

    cloudformation.delete_stack(StackName="backups")
    assert bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


@mock_aws
def test_the_tls_only_policy_lets_requests_through_and_a_deny_that_applies_still_refuses():
    """AWS applies a statement only when its conditions hold (IAM User Guide, "Policy evaluation
    logic"); every request to the emulator stands for one to AWS's HTTPS endpoint. (moto alone
    refuses the upload: it treats a Deny whose condition does not hold as applying. Not asserted
    here: a runtime started earlier in this process may have left its patches on.)"""
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="backups")
    arn = "arn:aws:s3:::backups"
    tls_only = {**TLS_ONLY["Statement"][0], "Resource": [arn, f"{arn}/*"]}
    s3.put_bucket_policy(Bucket="backups", Policy=json.dumps({"Version": "2012-10-17", "Statement": [tls_only]}))

    patches = PatchSet()
    evaluate_bucket_policies_as_aws(patches)
    try:
        s3.put_object(Bucket="backups", Key="backups/u/1.db", Body=b"x")
        assert s3.get_object(Bucket="backups", Key="backups/u/1.db")["Body"].read() == b"x"
        # A Deny whose condition holds (or that has none) still refuses.
        deny_all = {"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "s3:*", "Resource": [f"{arn}/*"],
                    "Condition": {"Bool": {"aws:SecureTransport": "true"}}}  # fmt: skip
        s3.put_bucket_policy(Bucket="backups", Policy=json.dumps({"Version": "2012-10-17", "Statement": [deny_all]}))
        with pytest.raises(ClientError):
            s3.put_object(Bucket="backups", Key="backups/u/2.db", Body=b"y")
    finally:
        patches.undo()


@mock_aws
def test_a_stacks_bucket_is_versioned_as_its_template_says():
    """CloudFormation applies VersioningConfiguration (AWS CloudFormation User Guide,
    "AWS::S3::Bucket VersioningConfiguration"); moto alone drops it, keeping one version per key."""
    patches = PatchSet()
    try:
        deploy_bucket_versioning(patches)
        cloudformation = boto3.client("cloudformation", region_name="us-east-1")
        s3 = boto3.client("s3", region_name="us-east-1")
        bucket_only = {"Resources": {"Bucket": TEMPLATE["Resources"]["Bucket"]}}
        cloudformation.create_stack(StackName="backups", TemplateBody=json.dumps(bucket_only))
        resources = cloudformation.describe_stack_resources(StackName="backups")["StackResources"]
        bucket = next(r["PhysicalResourceId"] for r in resources if r["LogicalResourceId"] == "Bucket")
        assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
        s3.put_object(Bucket=bucket, Key="backups/u/1.db", Body=b"x")
        s3.put_object(Bucket=bucket, Key="backups/u/1.db", Body=b"y")
        assert len(s3.list_object_versions(Bucket=bucket, Prefix="backups/u/")["Versions"]) == 2
    finally:
        patches.undo()
