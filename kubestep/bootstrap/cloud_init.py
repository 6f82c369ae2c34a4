"""What an instance is given: its files, split between the user-data and its bootstrap bundle.

The user-data is a `#cloud-config` with `write_files` only: the per-instance settings
(`bootstrap.env`, which names the bundle by bucket, key and SHA-256), the loader, and the
per-boot hook that runs it, so the loader runs at first boot and again after every reboot.
Everything else (host configuration, kubeadm's templates, add-on manifests, the scripts) is the
bundle (kubestep/bootstrap/bundle.py), which the loader downloads, checks and unpacks in place.
The cloud-config is gzipped (cloud-init recognises compressed user-data): EC2 allows 16 KB of
user-data before base64. The shell scripts ship without their comments and their indentation
(both stay in the repository's copies)."""

from __future__ import annotations

import ast
import base64
import gzip
import re
import shlex
from dataclasses import dataclass
from functools import cache
from importlib import resources

from kubestep import backups
from kubestep.bootstrap import addons, authenticator_mapping, bundle, components, host, kubeadm, paths, yaml_text
from kubestep.bootstrap.bundle import Bundle, BundleRef
from kubestep.bootstrap.params import BootstrapParams
from kubestep.store import keys

USER_DATA_LIMIT = 16384  # bytes, before base64 (EC2 RunInstances / launch templates)
PER_BOOT_HOOK = (
    "#!/bin/sh\n# kubestep: fetch the bootstrap bundle; bootstrap at first boot, remount and report after a reboot.\n"
    f"exec {paths.LOADER_SCRIPT}\n"
)


@dataclass(frozen=True)
class File:
    path: str
    content: str
    permissions: str = "0644"


# A full-line shell comment, but not the shebang or a shellcheck directive. The scripts keep no
# multi-line string whose lines start with `#` or are blank, so removing these lines is safe.
SHELL_COMMENT = re.compile(r"^\s*(#(?!!| shellcheck ).*)?$")
# A function definition's trailing comment (`name() { # what it does`).
FUNCTION_COMMENT = re.compile(r"^([a-z_]+\(\) \{) # .*$", re.MULTILINE)


def _ends_quoted(line: str, quote: str | None) -> str | None:
    """The quote (`'` or `"`) still open at the end of a shell line that starts inside `quote`.
    Enough of bash's quoting for the scripts (tests/bootstrap/test_cloud_config.py checks that
    bash parses every shipped script exactly as the repository's copy)."""
    escaped = False
    for i, char in enumerate(line):
        if escaped:
            escaped = False
        elif quote == "'":
            quote = None if char == "'" else quote
        elif char == "\\":
            escaped = True
        elif quote == '"':
            quote = None if char == '"' else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1] in " \t;|&("):
            break  # a comment to the end of the line
    return quote


def unindented(text: str) -> str:
    """Shell lines without their leading whitespace, but for a line that continues a quoted
    string (the inline Python, whose indentation is its syntax) or a backslash continuation."""
    lines, quote, continued = [], None, False
    for line in text.splitlines(keepends=True):
        lines.append(line if quote or continued else line.lstrip(" \t"))
        quote = _ends_quoted(line, quote)
        continued = line.endswith("\\\n")
    return "".join(lines)


@cache  # the same text for every instance: rendered once per process
def script(name: str) -> str:
    """A script as it ships: without comments, blank lines, indentation or docstrings."""
    text = resources.files("kubestep.bootstrap").joinpath("scripts", name).read_text()
    if name.endswith(".sh"):
        text = FUNCTION_COMMENT.sub(r"\1", text)
        return unindented("".join(line for line in text.splitlines(keepends=True) if not SHELL_COMMENT.match(line)))
    if name.endswith(".py"):
        tree = ast.parse(text)
        for node in ast.walk(tree):
            body = getattr(node, "body", None)
            if (
                isinstance(body, list)
                and body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
            ):
                node.body = body[1:] or [ast.Pass()]
        return ast.unparse(tree) + "\n"
    return text


def environment(p: BootstrapParams, ref: BundleRef | None = None) -> dict[str, str]:
    """The non-secret values the scripts read (`/etc/kubestep/bootstrap.env`), with the bundle
    the loader fetches when `ref` names one."""
    env = ref.settings() if ref else {}
    env |= {
        "TABLE": p.table,
        "REGION": p.region,
        "SERVICE_NAME": p.service_name,
        "CLUSTER_NAME": p.cluster_name,
        "CLUSTER_UID": p.uid,
        "ROLE": p.role,
        "KUBERNETES_VERSION": p.version,
        "KUBERNETES_MINOR": f"1.{p.minor}",
        "ENDPOINT": p.endpoint,
        "NODE_SECRET_ARN": p.node_secret_arn,
        "POD_CIDR": p.pod_cidr,
        # The report's and the claims' keys, from the store (the only place key formats live).
        "REPLICA_REPORT_PREFIX": keys.REPLICA_REPORT_PREFIX,
        "NODE_REPORT_PREFIX": keys.NODE_REPORT_PREFIX,
        "KUBERNETES_APT_REPOSITORY": components.kubernetes_apt_repository(p.minor),
        "KUBERNETES_APT_KEY_FINGERPRINT": components.KUBERNETES_APT_KEY_FINGERPRINT,
        "KUBERNETES_PACKAGE_REVISION": components.kubernetes_package_revision(),
    }
    if p.is_control_plane:
        env |= {
            "REPORT_PK": keys.bootstrap_pk(p.uid),
            "INIT_CLAIM_PK": keys.init_claim_pk(p.uid),
            "INIT_CLAIM_SK": keys.INIT_CLAIM_SK,
            "VERSION_CLAIM_PK": keys.version_claim_pk(p.uid),
            "UPGRADE_CLAIM_PREFIX": keys.UPGRADE_CLAIM_PREFIX,
            "ADDONS_CLAIM_PREFIX": keys.ADDONS_CLAIM_PREFIX,
            # The cluster administrators item, and the one rendering of it as the authenticator's
            # mapping (the AWS CLI applies it to the item it reads).
            "ADMINS_PK": keys.cluster_access_pk(p.uid),
            "ADMINS_SK": keys.ADMINS_SK,
            "ADMINS_MAPPING_QUERY": authenticator_mapping.QUERY,
            # The backup policy item (beside the administrators item) and the snapshots' records.
            "BACKUP_POLICY_SK": keys.BACKUP_POLICY_SK,
            "BACKUPS_PK": keys.backups_pk(p.uid),
            "BACKUP_SK_PREFIX": keys.BACKUP_PREFIX,
            "LATEST_BACKUP_SK": keys.LATEST_BACKUP_SK,
            "BACKUP_RETENTION_TAG": backups.RETENTION_TAG,
            # What RestoreCluster asks every replica to restore at boot (beside the policy).
            "RESTORE_REQUEST_SK": keys.RESTORE_REQUEST_SK,
        }
    else:
        # A node's report partition ends with its own instance ARN (the only one its role may
        # write); the script appends its instance id once it knows it.
        partition, account = p.node_secret_arn.split(":")[1], p.node_secret_arn.split(":")[4]
        env |= {
            "REPORT_PK": "",
            "NODE_REPORT_PK_PREFIX": keys.node_report_pk(p.uid, f"arn:{partition}:ec2:{p.region}:{account}:instance/"),
        }
    if p.is_control_plane:
        assert p.dns is not None and p.etcd_volume_id and p.control_plane_secret_arn
        calico_url, calico_sha256 = components.calico_manifest(p.minor)
        env |= {
            "CONTROL_PLANE_SECRET_ARN": p.control_plane_secret_arn,
            "REPLICA_INDEX": str(p.replica_index),
            "REPLICA_COUNT": str(p.replica_count),
            "REPLICA_NAME": p.replica_name,
            "REPLICA_NAMES": " ".join(p.replica_names),
            "HOSTED_ZONE_ID": p.dns.hosted_zone_id,
            "ETCD_VOLUME_ID": p.etcd_volume_id,
            "ETCD_MOUNT": paths.ETCD_MOUNT,
            "ETCD_DATA_DIR": paths.ETCD_DATA_DIR,
            "ENCRYPT_SECRETS": "true" if p.encrypt_secrets else "false",
            "CALICO_MANIFEST_URL": calico_url,
            "CALICO_MANIFEST_SHA256": calico_sha256,
            # `tagged=pinned` pairs: the manifest's image references rewritten to their digests.
            "CALICO_IMAGE_PINS": " ".join(
                f"{i.tagged}={i.reference}" for i in components.calico_images(p.minor) if i.digest
            ),
            "REPLICA_LABEL": kubeadm.REPLICA_LABEL,
            # The user the join-token refresh mints a certificate for (a Role in the add-ons binds it).
            "BOOTSTRAP_TOKEN_MANAGER": addons.BOOTSTRAP_TOKEN_MANAGER,
        }
    return env


def user_data_files(p: BootstrapParams, ref: BundleRef | None = None) -> list[File]:
    """What the user-data writes: the instance's settings, the loader and the hook that runs it."""
    env = "# shellcheck shell=bash\n# kubestep bootstrap settings (non-secret), sourced by /usr/local/sbin/kubestep-*\n"
    env += "".join(f"{key}={shlex.quote(value)}\n" for key, value in environment(p, ref).items())
    return [
        File(paths.ENV_FILE, env, "0600"),
        File(paths.LOADER_SCRIPT, script("loader.sh"), "0755"),
        File(paths.PER_BOOT_HOOK, PER_BOOT_HOOK, "0755"),
    ]


def files(p: BootstrapParams, ref: BundleRef | None = None) -> list[File]:
    """Every file an instance has once its loader unpacked the bundle."""
    return user_data_files(p, ref) + bundled_files(p)


def render_bundle(p: BootstrapParams) -> Bundle:
    """The bundle of an instance of `p` (its key: `Bundle.key(uid)`)."""
    return bundle.pack(bundled_files(p))


def bundled_files(p: BootstrapParams) -> list[File]:
    """What the bootstrap bundle carries: everything but the per-instance settings and the loader."""
    found = [
        File(paths.BOOTSTRAP_SCRIPT, script("bootstrap.sh"), "0755"),
        File(f"{paths.CONF_DIR}/containerd-config.toml", host.containerd_config(p)),
        File(paths.MODULES_FILE, host.modules_load()),
        File(paths.SYSCTL_FILE, host.sysctl_conf()),
    ]
    found += [File(f"{paths.TEMPLATES_DIR}/{name}", text, "0600") for name, text in kubeadm.files(p).items()]
    found += [File(f"{paths.SYSTEMD_DIR}/{name}", text) for name, text in host.systemd_units(p).items()]
    if not p.is_control_plane:
        return found
    found += [
        File(paths.ETCD_MEMBER_SCRIPT, script("etcd-member.sh"), "0755"),
        File(paths.ETCD_SNAPSHOT_SCRIPT, script("etcd-snapshot.sh"), "0755"),
        File(paths.WRITE_SECRETS_SCRIPT, script("write_secrets.py")),
        File(paths.KUBELET_ETCD_DROP_IN, host.kubelet_etcd_volume_drop_in()),
        File(
            f"{paths.AUTHENTICATOR_CONFIG_DIR}/config.yaml", yaml_text.sorted_document(addons.authenticator_config(p))
        ),
        File(f"{paths.AUTHENTICATOR_CONFIG_DIR}/pod.yaml", addons.to_yaml([addons.authenticator_pod()])),
        File(
            f"{paths.TEMPLATES_DIR}/authenticator-webhook.kubeconfig",
            addons.to_yaml([addons.authenticator_webhook_kubeconfig()]),
        ),
        File(f"{paths.ADDONS_DIR}/cloud-controller-manager.yaml", addons.to_yaml(addons.cloud_controller_manager(p))),
        File(f"{paths.ADDONS_DIR}/cluster-admins.yaml", addons.to_yaml(addons.cluster_admins_binding())),
        File(f"{paths.ADDONS_DIR}/bootstrap-token-manager.yaml", addons.to_yaml(addons.bootstrap_token_manager())),
        File(f"{paths.ADDONS_DIR}/kubestep-addons.yaml", addons.to_yaml(addons.addons_record(p))),
    ]
    if p.encrypt_secrets:
        found.append(
            File(f"{paths.TEMPLATES_DIR}/encryption-config.yaml", addons.to_yaml([addons.encryption_configuration()]))
        )
    if p.node_termination_queue_url:
        found.append(
            File(
                f"{paths.ADDONS_DIR}/node-termination-handler.yaml", addons.to_yaml(addons.node_termination_handler(p))
            )
        )
    return found


def write_files(found: list[File]) -> list[dict[str, str]]:
    """Files as cloud-init's `write_files` entries."""
    return [{"path": f.path, "owner": "root:root", "permissions": f.permissions, "content": f.content} for f in found]


def render_cloud_config(p: BootstrapParams, ref: BundleRef) -> str:
    """The cloud-config text (what cloud-init sees after decompressing the user-data)."""
    entries = write_files(user_data_files(p, ref))
    return yaml_text.cloud_config({"write_files": entries})


def render_user_data(p: BootstrapParams, ref: BundleRef) -> str:
    """The launch template's `UserData`: base64 of the gzipped cloud-config naming bundle `ref`."""
    packed = gzip.compress(render_cloud_config(p, ref).encode(), compresslevel=9, mtime=0)
    if len(packed) > USER_DATA_LIMIT:
        raise ValueError(f"user-data for {p.role} is {len(packed)} bytes gzipped; EC2 allows {USER_DATA_LIMIT}")
    return base64.b64encode(packed).decode()
