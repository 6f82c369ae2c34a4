"""The management service's network item (one per service)."""

from __future__ import annotations

from typing import Any

from kubestep.errors import NetworkNotReady
from kubestep.store import keys
from kubestep.store.records import NetworkRecord, NetworkZone
from kubestep.store.table import Table, iso


class NetworkRepository:
    def __init__(self, table: Table):
        self._table = table

    def get(self) -> NetworkRecord | None:
        return NetworkRecord.from_item(self._table.get(keys.NETWORK_PK, keys.NETWORK_SK))

    def ready(self, service_name: str) -> NetworkRecord:
        """The network, or NetworkNotReady saying how to get there."""
        return self.ready_of(self.get(), service_name)

    @staticmethod
    def ready_of(network: NetworkRecord | None, service_name: str) -> NetworkRecord:
        """``network`` (as read), or NetworkNotReady saying how to get there."""
        if network is None or network.status != "READY":
            state = network.status if network else "not provisioned"
            raise NetworkNotReady(
                f"the management service's network is {state}: run `kubestep local up` (local runtime) or "
                f"start the {service_name}-ProvisionNetwork state machine with input {{}} (any new execution "
                "name) and wait for it to succeed"
            )
        return network

    def update(self, **fields: Any) -> NetworkRecord:
        """Set top-level fields (Python names); None removes a field."""
        values = {NetworkRecord.attribute(k): _plain_value(v) for k, v in fields.items()}
        values.setdefault("updatedAt", iso())
        return NetworkRecord.from_item(self._table.update(keys.NETWORK_PK, keys.NETWORK_SK, values))  # type: ignore[return-value]

    def update_zone(self, zone: str, **fields: Any) -> NetworkRecord:
        """Set fields of one zone's entry without touching the other zones (parallel Map branches
        each write their own zone). The `zones` map itself exists from the operation's start."""
        self._table.update(keys.NETWORK_PK, keys.NETWORK_SK, {"zones": {}}, if_not_exists=("zones",), new_item=False)
        self._table.update(
            keys.NETWORK_PK, keys.NETWORK_SK, {f"zones.{zone}": {}}, if_not_exists=(f"zones.{zone}",), new_item=False
        )
        values = {f"zones.{zone}.{NetworkZone.attribute(k)}": v for k, v in fields.items()}
        return NetworkRecord.from_item(self._table.update(keys.NETWORK_PK, keys.NETWORK_SK, values))  # type: ignore[return-value]

    def delete(self) -> None:
        self._table.delete(keys.NETWORK_PK, keys.NETWORK_SK)


def _plain_value(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: (v.to_item() if hasattr(v, "to_item") else v) for k, v in value.items()}
    if hasattr(value, "to_item"):
        return value.to_item()
    return value
