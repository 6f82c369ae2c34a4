"""Secrets Manager: CreateSecret of a name held by a secret scheduled for deletion."""

from __future__ import annotations

from typing import Any

from kubestep_local.moto_compat.core import PatchSet


def name_scheduled_for_deletion_is_invalid_request(patches: PatchSet) -> None:
    """CreateSecret of a name whose secret is scheduled for deletion answers
    ``ResourceExistsException`` in moto: AWS answers ``InvalidRequestException``, the name being
    held until the deletion happens (Secrets Manager API reference, CreateSecret: Errors)."""
    from moto.secretsmanager.exceptions import InvalidRequestException
    from moto.secretsmanager.models import SecretsManagerBackend

    original_create_secret = SecretsManagerBackend.create_secret

    def create_secret(self: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        existing = self.secrets.get(name) if name in self.secrets.keys() else None  # noqa: SIM118 - moto's store
        if existing is not None and getattr(existing, "deleted_date", None):
            raise InvalidRequestException(
                "You can't create this secret because a secret with this name is already scheduled for deletion."
            )
        return original_create_secret(self, name, *args, **kwargs)

    patches.set(SecretsManagerBackend, "create_secret", create_secret)
