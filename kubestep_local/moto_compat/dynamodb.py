"""DynamoDB: item operations' answers sent as moto builds them."""

from __future__ import annotations

from typing import Any

from kubestep_local.moto_compat.core import PatchSet

# Item operations whose results are plain data (no timestamps or blobs to format).
DYNAMODB_DATA_OPERATIONS = frozenset(
    ("dynamodb", op)
    for op in (
        "GetItem",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "Query",
        "Scan",
        "BatchGetItem",
        "BatchWriteItem",
        "TransactGetItems",
        "TransactWriteItems",
    )
)


def send_items_as_built(patches: PatchSet) -> None:
    """DynamoDB's item operations return dicts already in the wire format (moto's
    ``dynamo_to_dict``); moto's generic serializer still walks every attribute value against the
    output shape, which was half of the emulator's time. Those results go out as they are (a
    speed fix only: the answer is the same bytes)."""
    from moto.core.serialize import BaseJSONSerializer

    original_result = BaseJSONSerializer._serialize_result

    def _serialize_result(self: Any, resp: Any, result: Any) -> Any:
        model = self.operation_model
        if isinstance(result, dict) and (model.service_model.service_name, model.name) in DYNAMODB_DATA_OPERATIONS:
            return self._serialized_result_to_response(resp, result, model.output_shape, result)
        return original_result(self, resp, result)

    patches.set(BaseJSONSerializer, "_serialize_result", _serialize_result)
