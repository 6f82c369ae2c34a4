"""Idempotency-Key for operations started through the API: a retry with the same key (and the
same body) within 24 hours returns the first answer — one execution — and the key reused with
another body is refused. Powertools idempotency on the service's single table (items
`pk = IDEMPOTENCY#api`, `sk = kubestep-api#<hash of route, key, caller>`, expiring through the
table's `ttl`), applied to the operations layer as the Powertools cookbook does."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)

from kubestep.aws import RETRY_CONFIG
from kubestep.store import keys

IDEMPOTENCY_TTL_SECONDS = 24 * 3600
IDEMPOTENCY_PK = keys.IDEMPOTENCY_PK
CONFIG = IdempotencyConfig(
    event_key_jmespath="[route, key, caller]",
    payload_validation_jmespath="body",
    raise_on_no_idempotency_key=True,
    expires_after_seconds=IDEMPOTENCY_TTL_SECONDS,
)


def _run(*, request: dict[str, Any], start: Callable[[], dict]) -> dict:
    return start()


@cache
def runner(table_name: str) -> Callable[..., dict]:
    persistence = DynamoDBPersistenceLayer(
        table_name=table_name,
        key_attr="pk",
        sort_key_attr="sk",
        static_pk_value=IDEMPOTENCY_PK,
        expiry_attr="ttl",
        boto_config=RETRY_CONFIG,
    )
    return idempotent_function(
        _run, data_keyword_argument="request", persistence_store=persistence, config=CONFIG, key_prefix="kubestep-api"
    )


def once(
    table_name: str, *, route: str, key: str | None, caller: str | None, body: dict[str, Any], start: Callable[[], dict]
) -> dict:
    """Start an operation, once per (route, key, caller) when a key is given."""
    if key is None:
        return start()
    request = {"route": route, "key": key, "caller": caller or "anonymous", "body": body}
    return runner(table_name)(request=request, start=start)
