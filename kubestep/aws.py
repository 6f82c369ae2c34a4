"""boto3 clients with the retry behaviour AWS recommends for control planes: adaptive mode
backs off client-side when EC2's token buckets run low (ANCHORS: CAPA #1751)."""

from __future__ import annotations

import threading
from functools import cache
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

RETRY_CONFIG = Config(retries={"mode": "adaptive", "max_attempts": 10}, connect_timeout=5, read_timeout=30)
_lock = threading.Lock()


@cache
def client(service: str, region: str | None = None) -> Any:
    # boto3's default session is not thread-safe for client creation.
    with _lock:
        return boto3.session.Session().client(service, region_name=region, config=RETRY_CONFIG)


def error_code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


def is_error(exc: Exception, *codes: str) -> bool:
    return isinstance(exc, ClientError) and error_code(exc) in codes
