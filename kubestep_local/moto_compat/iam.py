"""IAM: RemoveRoleFromInstanceProfile as AWS answers it."""

from __future__ import annotations

from typing import Any

from kubestep_local.moto_compat.core import PatchSet


def remove_absent_role_answers_no_such_entity(patches: PatchSet) -> None:
    """RemoveRoleFromInstanceProfile of a role the profile does not hold crashes moto (a 500):
    AWS answers ``NoSuchEntity`` (IAM API reference, RemoveRoleFromInstanceProfile: Errors), which
    a resent call after a lost response meets."""
    from moto.iam.exceptions import NoSuchEntity
    from moto.iam.models import IAMBackend

    original_remove_role = IAMBackend.remove_role_from_instance_profile

    def remove_role_from_instance_profile(self: Any, profile_name: str, role_name: str) -> None:
        profile = self.get_instance_profile(profile_name)
        if not any(role.name == role_name for role in profile.roles):
            raise NoSuchEntity(f"The role {role_name} is not in instance profile {profile_name}.")
        original_remove_role(self, profile_name, role_name)

    patches.set(IAMBackend, "remove_role_from_instance_profile", remove_role_from_instance_profile)
