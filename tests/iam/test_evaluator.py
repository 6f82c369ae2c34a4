"""The IAM evaluator's semantics, case by case, as AWS documents them ("Policy evaluation logic",
"IAM JSON policy elements: Condition operators", "Single-valued vs. multivalued context keys")."""

from __future__ import annotations

import pytest

from .evaluator import Request, UnsupportedPolicy, arn_match, evaluate, evaluate_with_key_policy

TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/demo-kubestep"


def allow(action, resource, condition=None, **extra):
    statement = {"Effect": "Allow", "Action": action, "Resource": resource, **extra}
    if condition:
        statement["Condition"] = condition
    return statement


def test_action_wildcards_are_case_insensitive_and_resource_wildcards_stay_in_their_arn_part():
    policy = [allow("EC2:describe*", "arn:aws:ec2:*:*:volume/*")]
    assert evaluate(Request("ec2:DescribeVolumes", "arn:aws:ec2:us-east-1:1:volume/vol-1"), policy).allowed
    assert not evaluate(Request("ec2:CreateVolume", "arn:aws:ec2:us-east-1:1:volume/vol-1"), policy).allowed
    # A `*` in the region part cannot swallow the account part.
    assert not arn_match("arn:aws:ec2:*:volume/*", "arn:aws:ec2:us-east-1:1:volume/v")
    # The resource part may itself hold colons (Step Functions executions).
    assert arn_match(
        "arn:aws:states:us-east-1:1:execution:svc-Create:*", "arn:aws:states:us-east-1:1:execution:svc-Create:op-1"
    )
    assert not arn_match(
        "arn:aws:states:us-east-1:1:execution:svc-Create:*", "arn:aws:states:us-east-1:1:execution:svc-x:1"
    )


def test_not_action_and_not_resource():
    policy = [{"Effect": "Allow", "NotAction": "iam:*", "NotResource": TABLE}]
    assert evaluate(Request("s3:GetObject", "arn:aws:s3:::b/k"), policy).allowed
    assert not evaluate(Request("iam:GetRole", "arn:aws:iam::1:role/r"), policy).allowed
    assert not evaluate(Request("dynamodb:GetItem", TABLE), policy).allowed


def test_an_explicit_deny_wins_and_a_boundary_intersects():
    request = Request("dynamodb:GetItem", TABLE)
    assert not evaluate(request, [allow("*", "*"), {"Effect": "Deny", "Action": "dynamodb:*", "Resource": "*"}]).allowed
    assert not evaluate(request, [allow("dynamodb:GetItem", TABLE)], [allow("ec2:*", "*")]).allowed
    assert evaluate(request, [allow("dynamodb:GetItem", TABLE)], [allow("dynamodb:*", "*")]).allowed
    # The boundary alone grants nothing.
    assert not evaluate(request, [], [allow("dynamodb:*", "*")]).allowed


def test_conditions_and_across_keys_or_across_values_and_a_missing_key():
    policy = [
        allow(
            "ec2:CreateTags",
            "*",
            {"StringEquals": {"ec2:CreateAction": ["CreateVpc", "CreateSubnet"], "aws:RequestTag/svc": "demo"}},
        )
    ]
    ok = Request(
        "ec2:CreateTags", "arn:aws:ec2:r:1:vpc/v", {"ec2:CreateAction": "CreateSubnet", "aws:RequestTag/svc": "demo"}
    )
    assert evaluate(ok, policy).allowed
    # Keys are case-insensitive, values are not.
    assert evaluate(
        Request(ok.action, ok.resource, {"EC2:createaction": "CreateVpc", "aws:requesttag/svc": "demo"}), policy
    ).allowed
    assert not evaluate(
        Request(ok.action, ok.resource, {"ec2:CreateAction": "CreateSubnet", "aws:RequestTag/svc": "Demo"}), policy
    ).allowed
    # Tagging an existing resource: no ec2:CreateAction in the request, so no match.
    assert not evaluate(Request(ok.action, ok.resource, {"aws:RequestTag/svc": "demo"}), policy).allowed


def test_negated_if_exists_null_bool_and_like_operators():
    request = Request("x:Y", "*", {"aws:ResourceTag/team": "platform", "kms:GrantIsForAWSResource": True})
    assert evaluate(request, [allow("x:Y", "*", {"StringNotEquals": {"aws:ResourceTag/team": "other"}})]).allowed
    assert evaluate(request, [allow("x:Y", "*", {"StringNotEquals": {"aws:ResourceTag/absent": "x"}})]).allowed
    assert evaluate(request, [allow("x:Y", "*", {"StringEqualsIfExists": {"aws:ResourceTag/absent": "x"}})]).allowed
    assert not evaluate(request, [allow("x:Y", "*", {"StringEqualsIfExists": {"aws:ResourceTag/team": "x"}})]).allowed
    assert evaluate(request, [allow("x:Y", "*", {"Null": {"aws:ResourceTag/absent": "true"}})]).allowed
    assert not evaluate(request, [allow("x:Y", "*", {"Null": {"aws:ResourceTag/team": "true"}})]).allowed
    assert evaluate(request, [allow("x:Y", "*", {"Bool": {"kms:GrantIsForAWSResource": "true"}})]).allowed
    assert evaluate(request, [allow("x:Y", "*", {"StringLike": {"aws:ResourceTag/team": "plat*"}})]).allowed
    assert evaluate(
        Request("x:Y", "*", {"ec2:LaunchTemplate": "arn:aws:ec2:us-east-1:1:launch-template/lt-1"}),
        [allow("x:Y", "*", {"ArnLike": {"ec2:LaunchTemplate": "arn:aws:ec2:us-east-1:1:launch-template/*"}})],
    ).allowed


def test_set_operators_on_multivalued_keys_including_the_missing_key_pitfall():
    only_own = [
        allow("dynamodb:PutItem", TABLE, {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["BOOTSTRAP#a"]}})
    ]
    assert evaluate(Request("dynamodb:PutItem", TABLE, {"dynamodb:LeadingKeys": ["BOOTSTRAP#a"]}), only_own).allowed
    assert not evaluate(
        Request("dynamodb:PutItem", TABLE, {"dynamodb:LeadingKeys": ["BOOTSTRAP#a", "BOOTSTRAP#b"]}), only_own
    ).allowed
    # ForAllValues with the key absent is vacuously true (AWS documents this pitfall).
    assert evaluate(Request("dynamodb:PutItem", TABLE), only_own).allowed
    any_of = [allow("x:Y", "*", {"ForAnyValue:StringLike": {"aws:TagKeys": ["kubernetes.io/*"]}})]
    assert evaluate(Request("x:Y", "*", {"aws:TagKeys": ["a", "kubernetes.io/cluster/u"]}), any_of).allowed
    assert not evaluate(Request("x:Y", "*"), any_of).allowed
    not_ownership = [allow("x:Y", "*", {"ForAllValues:StringNotEquals": {"aws:TagKeys": ["owner"]}})]
    assert evaluate(Request("x:Y", "*", {"aws:TagKeys": ["spec"]}), not_ownership).allowed
    assert not evaluate(Request("x:Y", "*", {"aws:TagKeys": ["spec", "owner"]}), not_ownership).allowed


def test_what_it_does_not_model_raises_instead_of_passing():
    with pytest.raises(UnsupportedPolicy):
        evaluate(Request("x:Y", "*", {"k": "v"}), [allow("x:Y", "*", {"DateGreaterThan": {"k": "2020"}})])
    with pytest.raises(UnsupportedPolicy):
        evaluate(Request("x:Y", "arn:aws:s3:::b/u"), [allow("x:Y", "arn:aws:s3:::b/${aws:username, 'x'}")])


INSTANCE = "arn:aws:ec2:us-east-1:123456789012:instance/i-0abc"


def test_policy_variables_come_from_the_request_and_an_unresolved_one_voids_its_statement():
    """ "IAM policy elements: Variables and tags": a variable is replaced by the request's value of
    that key; a variable AWS cannot resolve may make the whole statement invalid, so it grants
    (and denies) nothing."""
    own_item = [allow("dynamodb:PutItem", TABLE, {"ForAllValues:StringEquals": {
        "dynamodb:LeadingKeys": ["NODE#${ec2:SourceInstanceARN}"]}})]  # fmt: skip
    mine = {"ec2:SourceInstanceARN": INSTANCE}
    assert evaluate(
        Request("dynamodb:PutItem", TABLE, {**mine, "dynamodb:LeadingKeys": [f"NODE#{INSTANCE}"]}), own_item
    ).allowed
    other = f"NODE#{INSTANCE.replace('0abc', '0def')}"
    assert not evaluate(Request("dynamodb:PutItem", TABLE, {**mine, "dynamodb:LeadingKeys": [other]}), own_item).allowed
    # Not an instance's request: the variable has no value and the statement does not apply.
    assert not evaluate(
        Request("dynamodb:PutItem", TABLE, {"dynamodb:LeadingKeys": [f"NODE#{INSTANCE}"]}), own_item
    ).allowed
    in_resource = [allow("s3:GetObject", "arn:aws:s3:::b/${aws:username}/*")]
    assert evaluate(Request("s3:GetObject", "arn:aws:s3:::b/ann/x", {"aws:username": "ann"}), in_resource).allowed
    assert not evaluate(Request("s3:GetObject", "arn:aws:s3:::b/bob/x", {"aws:username": "ann"}), in_resource).allowed
    # A Deny whose variable is unresolved does not apply either.
    deny = {
        "Effect": "Deny",
        "Action": "x:Y",
        "Resource": "*",
        "Condition": {"StringNotEquals": {"k": "${aws:RequestTag/u}"}},
    }
    assert evaluate(Request("x:Y", "*", {"k": "a"}), [allow("x:Y", "*"), deny]).allowed
    assert not evaluate(Request("x:Y", "*", {"k": "a", "aws:RequestTag/u": "b"}), [allow("x:Y", "*"), deny]).allowed


KEY = "arn:aws:kms:us-east-1:123456789012:key/k-1"
ROLE = "arn:aws:iam::123456789012:role/app"


def test_a_kms_key_is_usable_only_as_its_key_policy_allows():
    """AWS KMS Developer Guide, "Key policies in AWS KMS": the key policy must allow the caller,
    by name, or the account (the default key policy's root statement), which lets IAM decide."""
    decrypt = Request("kms:Decrypt", KEY)
    iam_allows = [allow("kms:Decrypt", KEY)]
    root = [
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "kms:*", "Resource": "*"}
    ]
    assert evaluate_with_key_policy(decrypt, ROLE, "123456789012", root, iam_allows).allowed
    assert not evaluate_with_key_policy(decrypt, ROLE, "123456789012", root, []).allowed
    # A key policy without the account statement: IAM policies alone cannot use the key.
    only_admin = [
        {
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::123456789012:role/admin"},
            "Action": "kms:*",
            "Resource": "*",
        }
    ]
    assert not evaluate_with_key_policy(decrypt, ROLE, "123456789012", only_admin, iam_allows).allowed
    # Named by the key policy (here `*` narrowed by aws:PrincipalArn): no identity policy needed,
    # but a permissions boundary still caps it.
    by_arn = [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:Decrypt", "Resource": "*",
               "Condition": {"ArnEquals": {"aws:PrincipalArn": ROLE}}}]  # fmt: skip
    named = Request("kms:Decrypt", KEY, {"aws:PrincipalArn": ROLE})
    assert evaluate_with_key_policy(named, ROLE, "123456789012", by_arn, []).allowed
    assert not evaluate_with_key_policy(named, ROLE, "123456789012", by_arn, [], [allow("s3:*", "*")]).allowed
    other = "arn:aws:iam::123456789012:role/x"
    other_request = Request("kms:Decrypt", KEY, {"aws:PrincipalArn": other})
    assert not evaluate_with_key_policy(other_request, other, "123456789012", by_arn, []).allowed
