"""boto3 clients with the retry behaviour AWS recommends for control planes: adaptive mode
backs off client-side when EC2's token buckets run low (fleets of Cluster API AWS
clusters hit RequestLimitExceeded with fixed-rate retries: kubernetes-sigs/cluster-api-provider-aws#1751).

Error codes and the predicates over them live in `kubestep.aws.errors`."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from functools import cache
from typing import Any, ParamSpec, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from kubestep.aws.errors import not_yet_visible
from kubestep.errors import ResourcePending

RETRY_CONFIG = Config(retries={"mode": "adaptive", "max_attempts": 10}, connect_timeout=5, read_timeout=30)
_lock = threading.Lock()
P = ParamSpec("P")
R = TypeVar("R")


@cache
def session() -> boto3.session.Session:
    """The process's one session: a session loads botocore's endpoint and partition data on its
    first client (~0.2 s of a cold start), so a session per service would load it once per service."""
    return boto3.session.Session()


@cache
def client(service: str, region: str | None = None) -> Any:
    # A session is not thread-safe for client creation.
    with _lock:
        return session().client(service, region_name=region, config=RETRY_CONFIG)


def resource(service: str, region: str | None = None) -> Any:
    with _lock:
        return session().resource(service, region_name=region, config=RETRY_CONFIG)


def pending_until_visible(fn: Callable[P, R]) -> Callable[P, R]:
    """For steps that create and then use resources: a NotFound on something just created
    becomes ResourcePending (retried by the state machine) instead of a failed create."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except ClientError as exc:
            if not_yet_visible(exc):
                raise ResourcePending(f"not visible yet: {exc}") from exc
            raise

    return wrapper
