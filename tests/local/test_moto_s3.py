"""kubestep_local/moto_s3.py: moto's CloudFormation deploys the backup bucket's policy, as
CloudFormation does (AWS CloudFormation User Guide, "AWS::S3::BucketPolicy"): put on the bucket
with the stack, deleted with it. Without it moto skips the type, and the emulator's bucket would
take plain-HTTP requests the real one refuses."""

from __future__ import annotations

import json

import boto3
from moto import mock_aws

from kubestep_local.moto_s3 import deploy_bucket_policies

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

    cloudformation.delete_stack(StackName="backups")
    assert bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
