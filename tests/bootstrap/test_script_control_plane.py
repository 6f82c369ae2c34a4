"""The real rendered bootstrap script, run by bash in a sandbox, for control-plane replicas:
first boot of the replica that initialises, a replica joining, replacements with and without
the etcd volume's data, a reboot, and failures reported with their phase."""

from __future__ import annotations

import hashlib
import json
import stat

import pytest
import yaml

from kubestep.bootstrap import components, schema
from kubestep.store import keys
from tests.bootstrap.conftest import ADMIN_ROLE, ADMIN_USER, CA_HASH, JOIN_TOKEN, SECRETS, admins_item, control_plane
from tests.bootstrap.harness import FIXTURES, Sandbox

UID = "abcd1234"
INIT_KEY = f"{keys.init_claim_pk(UID)}|{keys.INIT_CLAIM_SK}"
ADDONS_KEY = f"{keys.version_claim_pk(UID)}|{keys.addons_claim_sk('1.35.4')}"
NAMES = [f"cp-{i}.{UID}.svc.kubestep.internal" for i in range(3)]


@pytest.fixture(autouse=True)
def calico_fixture_checksum(monkeypatch):
    # The stubbed download serves an excerpt of the pinned manifest; pin the excerpt's checksum.
    digest = hashlib.sha256((FIXTURES / "calico-vxlan-standin.yaml").read_bytes()).hexdigest()
    pinned = components.calico_manifest
    monkeypatch.setattr(components, "calico_manifest", lambda minor: (pinned(minor)[0], digest))


def member(i: int, status: str = "started", peer: str | None = None) -> dict[str, str]:
    return {
        "id": f"{0x1000 + i:x}",
        "status": status,
        "name": NAMES[i],
        "peer": peer or f"https://{NAMES[i]}:2380",
        "client": f"https://{NAMES[i]}:2379",
    }


def initialised(by: int = 0) -> dict:
    return {
        INIT_KEY: {
            "pk": {"S": keys.init_claim_pk(UID)},
            "sk": {"S": keys.INIT_CLAIM_SK},
            "status": {"S": "initialized"},
            "replica": {"N": str(by)},
        }
    }


def sandbox(tmp_path, index=0, *, state=None, data_on_volume=False, **scenario) -> Sandbox:
    box = Sandbox(
        tmp_path,
        control_plane(index),
        {"secrets": SECRETS, "filesystem": "ext4" if data_on_volume else None, "state": state or {}, **scenario},
        aws_preinstalled=scenario.pop("aws_preinstalled", True),
    )
    link = box.file(f"/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol0123456789abcdef{index}")
    link.parent.mkdir(parents=True)
    box.file("/dev/nvme1n1").write_text("")
    link.symlink_to(box.file("/dev/nvme1n1"))
    if data_on_volume:
        box.file("/var/lib/kubestep/etcd-volume/data/member/snap").mkdir(parents=True)
    return box


PACING = (["start", "kubestep-report-soon.timer"], ["stop", "kubestep-report-soon.timer"])


def report(run) -> dict:
    """The report's item: the last call, or the one before it when a replica's ok report is
    followed by its pacing (the fast report timer started while the report falls short of the
    whole control plane, else stopped)."""
    last = run.calls[-1]
    if last["cmd"] == "systemctl":
        assert last["args"] in PACING, last
        last = run.calls[-2]
    assert last["cmd"] == "aws" and last["args"][:2] == ["dynamodb", "put-item"], last
    item = json.loads(last["args"][last["args"].index("--item") + 1])
    assert item["sk"]["S"].startswith((keys.REPLICA_REPORT_PREFIX, keys.NODE_REPORT_PREFIX))
    return item


def first_kubeadm(run) -> int:
    return run.index(lambda c: c["cmd"] == "kubeadm")


# ---------------------------------------------------------------- replica 0, first boot


@pytest.fixture(scope="module")
def first_boot(tmp_path_factory):
    hashed = hashlib.sha256((FIXTURES / "calico-vxlan-standin.yaml").read_bytes()).hexdigest()
    original = components.calico_manifest
    components.calico_manifest = lambda minor: (original(minor)[0], hashed)
    try:
        box = sandbox(tmp_path_factory.mktemp("first-boot"), 0, state={"items": admins_item()}, aws_preinstalled=False)
    finally:
        components.calico_manifest = original
    run = box.run()
    assert run.returncode == 0, run.stderr
    return box, run


def test_aws_cli_is_installed_before_anything_else(first_boot):
    _, run = first_boot
    assert run.calls[0]["cmd"] == "snap" and run.calls[0]["args"][:3] == ["install", "aws-cli", "--classic"]
    assert run.index(lambda c: c["cmd"] == "aws") > 0


def test_kernel_modules_and_sysctls_are_persisted_and_loaded(first_boot):
    box, run = first_boot
    assert box.read("/etc/modules-load.d/kubestep-kubernetes.conf").split() == ["overlay", "br_netfilter"]
    sysctls = dict(line.split(" = ") for line in box.read("/etc/sysctl.d/99-kubestep-kubernetes.conf").splitlines())
    assert sysctls == {
        "net.ipv4.ip_forward": "1",
        "net.bridge.bridge-nf-call-iptables": "1",
        "net.bridge.bridge-nf-call-ip6tables": "1",
    }
    assert ["overlay"] in run.commands("modprobe") and ["br_netfilter"] in run.commands("modprobe")
    assert ["--system"] in run.commands("sysctl")
    assert run.index(lambda c: c["cmd"] == "sysctl") < first_kubeadm(run)


def test_apt_waits_for_the_dpkg_lock_and_pins_the_version(first_boot):
    _, run = first_boot
    apt = run.commands("apt-get")
    assert apt and all("DPkg::Lock::Timeout=600" in args for args in apt)
    assert any("kubeadm=1.35.4-1.1" in args and "kubelet=1.35.4-1.1" in args and "etcd-client" in args for args in apt)
    assert ["hold", "kubelet", "kubeadm", "kubectl"] in run.commands("apt-mark")


def test_containerd_runs_with_systemd_cgroups_and_the_matching_sandbox_image_before_kubeadm(first_boot):
    box, run = first_boot
    config = box.read("/etc/containerd/config.toml")
    assert "SystemdCgroup = true" in config
    assert f'sandbox_image = "{components.pause_image(box.params.minor)}"' in config
    restart = run.index(lambda c: c["cmd"] == "systemctl" and c["args"] == ["restart", "containerd"])
    assert restart < first_kubeadm(run)


def test_new_etcd_volume_is_formatted_mounted_and_in_fstab(first_boot):
    box, run = first_boot
    assert run.aws("ec2", "attach-volume")
    assert len(run.commands("mkfs.ext4")) == 1 and run.commands("mkfs.ext4")[0][-1].endswith("/dev/nvme1n1")
    fstab = box.read("/etc/fstab").splitlines()
    assert fstab == [
        "UUID=0b7ab1e5-0000-4000-8000-00000000e7cd /var/lib/kubestep/etcd-volume ext4 "
        "defaults,nofail,x-systemd.device-timeout=90s 0 2"
    ]
    assert [str(box.file("/var/lib/kubestep/etcd-volume"))] in run.commands("mount")
    # The kubelet (and so etcd) waits for the mount after a reboot.
    drop_in = box.read("/etc/systemd/system/kubelet.service.d/20-kubestep-etcd-volume.conf")
    assert "RequiresMountsFor=/var/lib/kubestep/etcd-volume" in drop_in


def test_replica_registers_its_stable_name_before_etcd_starts(first_boot):
    _, run = first_boot
    change = run.aws("route53", "change-resource-record-sets")[0]
    batch = json.loads(change[change.index("--change-batch") + 1])
    record = batch["Changes"][0]
    assert record["Action"] == "UPSERT"
    assert record["ResourceRecordSet"] == {
        "Name": NAMES[0],
        "Type": "A",
        "TTL": 30,
        "ResourceRecords": [{"Value": "10.0.1.10"}],
    }
    assert change[change.index("--hosted-zone-id") + 1] == "Z0123456789ABCDEFGHIJ"
    upsert = run.index(lambda c: c["cmd"] == "aws" and c["args"][:1] == ["route53"])
    assert upsert < first_kubeadm(run)


def test_ca_material_is_placed_from_the_control_plane_secret(first_boot):
    box, _ = first_boot
    secret = json.loads(SECRETS[control_plane().control_plane_secret_arn])
    for key, path, mode in [
        ("ca.crt", "ca.crt", 0o644),
        ("ca.key", "ca.key", 0o600),
        ("etcd-ca.key", "etcd/ca.key", 0o600),
        ("front-proxy-ca.crt", "front-proxy-ca.crt", 0o644),
        ("sa.key", "sa.key", 0o600),
        ("sa.pub", "sa.pub", 0o644),
    ]:
        placed = box.file(f"/etc/kubernetes/pki/{path}")
        assert placed.read_text() == secret[key]
        assert stat.S_IMODE(placed.stat().st_mode) == mode, path
    encryption = yaml.safe_load(box.read("/etc/kubernetes/encryption/config.yaml"))
    keys = encryption["resources"][0]["providers"][0]["secretbox"]["keys"]
    assert keys[0]["secret"] == secret["encryptionKey"]
    assert stat.S_IMODE(box.file("/etc/kubernetes/encryption/config.yaml").stat().st_mode) == 0o600


def test_initialisation_is_claimed_in_the_registry_then_kubeadm_init_runs_once(first_boot):
    box, run = first_boot
    claim = next(a for a in run.aws("dynamodb", "put-item") if "--condition-expression" in a)
    assert claim[claim.index("--condition-expression") + 1] == "attribute_not_exists(pk)"
    claim_at = run.index(lambda c: c["cmd"] == "aws" and "--condition-expression" in c["args"])
    inits = run.kubeadm("init", "--config")
    assert len(inits) == 1 and run.calls.index(inits[0]) > claim_at
    assert not run.kubeadm("join")
    assert box.dynamodb_items()[INIT_KEY]["status"]["S"] == "initialized"


def test_kubeadm_init_config_carries_the_cluster_settings(first_boot):
    _, run = first_boot
    (init,) = run.kubeadm("init", "--config")
    assert "--upload-certs" not in init["args"] and len(init["args"]) == 3
    documents = {d["kind"]: d for d in yaml.safe_load_all(init["config"])}
    assert set(documents) == {"InitConfiguration", "ClusterConfiguration", "KubeletConfiguration"}
    for document in documents.values():  # as filled in on the instance
        which = schema.KUBELET if document["kind"] == "KubeletConfiguration" else schema.KUBEADM
        assert schema.problems(which, document) == []
    init_config, cluster = documents["InitConfiguration"], documents["ClusterConfiguration"]
    assert init_config["bootstrapTokens"][0]["token"] == JOIN_TOKEN
    assert init_config["nodeRegistration"]["name"] == "ip-10-0-1-10.ec2.internal"
    assert {"name": "cloud-provider", "value": "external"} in init_config["nodeRegistration"]["kubeletExtraArgs"]
    assert init_config["localAPIEndpoint"] == {"advertiseAddress": "10.0.1.10", "bindPort": 6443}
    assert "certificateKey" not in init_config
    assert cluster["controlPlaneEndpoint"] == "gke-abcd1234-cp-0123456789abcdef.elb.us-east-1.amazonaws.com:443"
    assert cluster["networking"]["podSubnet"] == "10.244.0.0/16"
    assert cluster["networking"]["serviceSubnet"] == "10.96.0.0/12"
    etcd = cluster["etcd"]["local"]
    assert etcd["dataDir"] == "/var/lib/kubestep/etcd-volume/data"
    assert etcd["serverCertSANs"] == NAMES and etcd["peerCertSANs"] == NAMES
    api_args = {a["name"]: a["value"] for a in cluster["apiServer"]["extraArgs"]}
    webhook = api_args["authentication-token-webhook-config-file"]
    assert webhook == "/etc/kubernetes/aws-iam-authenticator/kubeconfig.yaml"
    assert api_args["encryption-provider-config"] == "/etc/kubernetes/encryption/config.yaml"
    assert documents["KubeletConfiguration"]["cgroupDriver"] == "systemd"


def test_etcd_identity_is_the_stable_name_when_initialising(first_boot):
    _, run = first_boot
    (init,) = run.kubeadm("init", "--config")
    patch = json.loads(init["patches"]["etcd+json.json"])
    flags = [op["value"] for op in patch]
    assert flags == [
        f"--name={NAMES[0]}",
        f"--initial-advertise-peer-urls=https://{NAMES[0]}:2380",
        f"--advertise-client-urls=https://{NAMES[0]}:2379",
        f"--initial-cluster={NAMES[0]}=https://{NAMES[0]}:2380",
        "--initial-cluster-state=new",
    ]
    assert all(op["op"] == "add" and op["path"] == "/spec/containers/0/command/-" for op in patch)
    kubelet = json.loads(init["patches"]["kubeletconfiguration+merge.json"])
    assert kubelet["providerID"] == "aws:///us-east-1a/i-0aaaaaaaaaaaaaaa1"


def test_authenticator_webhook_is_ready_before_the_api_server_and_runs_as_a_static_pod(first_boot):
    box, run = first_boot
    webhook = yaml.safe_load(box.read("/etc/kubernetes/aws-iam-authenticator/kubeconfig.yaml"))
    assert webhook["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:21362/authenticate"
    assert webhook["clusters"][0]["cluster"]["certificate-authority-data"]  # the generated certificate
    assert run.index(lambda c: c["cmd"] == "openssl") < first_kubeadm(run)
    pod = yaml.safe_load(box.read("/etc/kubernetes/manifests/aws-iam-authenticator.yaml"))
    assert pod["spec"]["hostNetwork"] and "--kubeconfig-pregenerated=true" in pod["spec"]["containers"][0]["args"]
    config = yaml.safe_load(box.read("/etc/kubestep/aws-iam-authenticator/config.yaml"))
    assert config == {"clusterID": UID, "server": {"dynamicfilepath": "/etc/aws-iam-authenticator/admins.json"}}
    assert "--backend-mode=DynamicFile" in pod["spec"]["containers"][0]["args"]
    # The administrators item's mapping is in place before kubeadm starts the static pods, in the
    # directory the pod mounts.
    mapping = json.loads(box.read("/etc/kubestep/aws-iam-authenticator/admins.json"))
    assert [r["rolearn"] for r in mapping["mapRoles"]] == [ADMIN_ROLE]
    assert mapping["mapUsers"] == [
        {"userarn": ADMIN_USER, "username": ADMIN_USER, "groups": ["kubestep:cluster-admins"]}
    ]
    assert (mapping["Version"], report(run)["checks"]["M"]["adminsGeneration"]) == ("1", {"N": "1"})
    mounts = {v["name"]: v["hostPath"]["path"] for v in pod["spec"]["volumes"]}
    assert mounts["config"] == "/etc/kubestep/aws-iam-authenticator"
    admins_key = json.dumps(
        {"pk": {"S": keys.cluster_access_pk(UID)}, "sk": {"S": keys.ADMINS_SK}}, separators=(",", ":")
    )
    read_item = run.index(
        lambda c: c["cmd"] == "aws" and c["args"][:2] == ["dynamodb", "get-item"] and admins_key in c["args"]
    )
    assert read_item < first_kubeadm(run)


def test_addons_are_applied_once_by_the_initialising_replica(first_boot):
    box, run = first_boot
    applied = run.applied()
    assert len(applied) == 6
    calico, ccm, admins, token_manager, nth, record = (list(yaml.safe_load_all(text)) for text in applied)
    node = next(d for d in calico if d["kind"] == "DaemonSet")["spec"]["template"]["spec"]
    calico_env = {e["name"]: e.get("value") for e in node["containers"][0]["env"]}
    assert calico_env["CALICO_IPV4POOL_VXLAN"] == "Always"
    assert calico_env["CALICO_IPV4POOL_IPIP"] == "Never"
    assert calico_env["CALICO_IPV4POOL_CIDR"] == "10.244.0.0/16"
    # The manifest's images, pulled by their pinned digests.
    pins = {i.tagged: i.reference for i in components.calico_images(box.params.minor)}
    assert node["containers"][0]["image"] == pins["quay.io/calico/node:v3.32.1"]
    assert node["initContainers"][0]["image"] == pins["quay.io/calico/cni:v3.32.1"]
    assert "@sha256:" in node["containers"][0]["image"]
    assert {d["kind"] for d in ccm} >= {"DaemonSet", "ClusterRole", "ServiceAccount"}
    daemon_set = next(d for d in ccm if d["kind"] == "DaemonSet")
    image = daemon_set["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == components.cloud_controller_manager_image(box.params.minor)
    assert admins[0]["roleRef"]["name"] == "cluster-admin"
    assert {d["kind"] for d in token_manager} == {"Role", "RoleBinding"}
    deployment = next(d for d in nth if d["kind"] == "Deployment")
    env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["QUEUE_URL"].endswith("/svc-node-lifecycle-abcd1234")
    assert env["ENABLE_SQS_TERMINATION_DRAINING"] == "true"
    # Last, the version the add-ons match.
    assert record == [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": "kubestep-addons",
                "labels": {"app.kubernetes.io/managed-by": "kubestep"},
                "namespace": "kube-system",
            },
            "data": {"version": "1.35.4"},
        }
    ]
    for args in (c["args"] for c in run.calls if c["cmd"] == "kubectl" and "apply" in c["args"]):
        # Server-side apply, against this replica's own API server.
        assert "--server-side" in args and args[args.index("--server") + 1] == "https://10.0.1.10:6443"
    # Claimed once for the version, then marked initialised only after the add-ons: joiners wait for it.
    items = box.dynamodb_items()
    assert items[ADDONS_KEY]["status"]["S"] == "applied"
    marked = run.index(
        lambda c: (
            c["cmd"] == "aws"
            and c["args"][:2] == ["dynamodb", "update-item"]
            and "initializedAt" in " ".join(c["args"])
        )
    )
    assert marked > max(i for i, c in enumerate(run.calls) if c["cmd"] == "kubectl" and "apply" in c["args"])


def test_the_maintenance_timers_are_enabled(first_boot):
    box, run = first_boot
    enabled = [a for a in run.commands("systemctl") if a[:2] == ["enable", "--now"]]
    assert enabled == [
        ["enable", "--now", "kubestep-token-refresh.timer", "kubestep-certs-renew.timer", "kubestep-backup.timer"],
        ["enable", "--now", "kubestep-report.timer"],
    ]
    renew = box.read("/etc/systemd/system/kubestep-certs-renew.timer")
    assert "OnCalendar=*-*-* 02:17:00 UTC" in renew  # replica 0's hour; each replica has its own
    service = box.read("/etc/systemd/system/kubestep-report.service")
    assert "ExecStart=/usr/local/sbin/kubestep-bootstrap report" in service
    assert "ConditionPathExists=/var/lib/kubestep/bootstrap-complete" in service


def test_a_report_short_of_the_whole_control_plane_starts_the_fast_report_timer(first_boot):
    """Replica 0 reports 1 of its 3 members: it reports again every 10 s until its report shows
    all of them (the minute timer alone would keep the gate waiting up to a minute after the
    last join)."""
    box, run = first_boot
    assert report(run)["checks"]["M"]["etcdMembers"] == {"N": "1"}
    assert run.calls[-1]["args"] == ["start", "kubestep-report-soon.timer"]
    soon = box.read("/etc/systemd/system/kubestep-report-soon.timer")
    for setting in ("OnActiveSec=10s", "OnUnitActiveSec=10s", "Unit=kubestep-report.service"):
        assert setting in soon.splitlines()
    # Started only by a short report, never at boot by itself.
    assert "[Install]" not in soon
    assert not [a for a in run.commands("systemctl") if a[0] == "enable" and "kubestep-report-soon.timer" in a]


def test_report_is_written_last_with_the_checks(first_boot):
    _, run = first_boot
    item = report(run)
    assert (
        item["sk"]["S"] == keys.replica_report_sk(0) and item["status"]["S"] == "ok" and item["source"]["S"] == "boot"
    )
    assert item["instanceId"]["S"] == "i-0aaaaaaaaaaaaaaa1" and item["version"]["S"] == "1.35.4"
    assert item["checks"]["M"] == {
        "etcdMembers": {"N": "1"},
        "etcdLearners": {"N": "0"},
        "etcdHealthy": {"BOOL": True},
        "apiserverReady": {"BOOL": True},
        "clusterVersion": {"S": "1.35.4"},
        "addonsVersion": {"S": "1.35.4"},
        "adminsGeneration": {"N": "1"},
    }
    # The stubbed openssl reads every certificate as expiring on 2027-12-01; here only the CAs
    # exist (the stubbed kubeadm writes no certificates).
    assert item["certificates"]["M"] == {
        name: {"S": "2027-12-01T00:00:00Z"} for name in ("ca", "front-proxy-ca", "etcd-ca")
    }


def test_nothing_secret_reaches_the_command_lines(first_boot):
    _, run = first_boot
    secret = json.loads(SECRETS[control_plane().control_plane_secret_arn])
    for call in run.calls:
        line = " ".join(call["args"])
        assert JOIN_TOKEN not in line and "PRIVATE KEY" not in line and secret["encryptionKey"] not in line, call


# ---------------------------------------------------------------- other replicas


def test_replica_joining_an_initialised_cluster_follows_kubeadms_phases_with_a_learner(tmp_path):
    box = sandbox(tmp_path, 1, state={"items": initialised(0), "members": [member(0)]})
    run = box.run()
    assert run.returncode == 0, run.stderr
    assert not run.kubeadm("init", "--config")
    join = str(box.file("/etc/kubestep/kubeadm/join.yaml"))
    init = str(box.file("/etc/kubestep/kubeadm/init.yaml"))
    kubeadm_calls = [c["args"] for c in run.calls if c["cmd"] == "kubeadm"]
    # kubeadm's join workflow phase by phase; kubestep's etcd step where kubeadm's etcd-join runs.
    assert kubeadm_calls == [
        ["join", "phase", "preflight", "--config", join],
        ["join", "phase", "control-plane-prepare", "all", "--config", join],
        ["join", "phase", "kubelet-start", "--config", join],
        ["init", "phase", "etcd", "local", "--config", init],
        ["join", "phase", "kubelet-wait-bootstrap", "--config", join],
        ["join", "phase", "control-plane-join", "mark-control-plane", "--config", join],
        ["join", "phase", "wait-control-plane", "--config", join],
    ]
    # The claim was refused (someone initialised), so it waits for `initialized`, then joins.
    assert run.aws("dynamodb", "get-item")
    etcd = [a for a in run.commands("etcdctl") if a[:1] == ["member"]]
    assert ["member", "add", NAMES[1], f"--peer-urls=https://{NAMES[1]}:2380", "--learner"] in etcd
    assert not [a for a in etcd if a[:2] == ["member", "remove"]]
    # The learner is added after the kubelet starts, and promoted before the kubelet bootstraps.
    kubelet_start = run.index(lambda c: c["cmd"] == "kubeadm" and c["args"][:3] == ["join", "phase", "kubelet-start"])
    added = run.index(lambda c: c["cmd"] == "etcdctl" and c["args"][:2] == ["member", "add"])
    promoted = run.index(lambda c: c["cmd"] == "etcdctl" and c["args"][:2] == ["member", "promote"])
    bootstrap = run.index(
        lambda c: c["cmd"] == "kubeadm" and c["args"][:3] == ["join", "phase", "kubelet-wait-bootstrap"]
    )
    assert kubelet_start < added < promoted < bootstrap
    (etcd_local,) = run.kubeadm("init", "phase", "etcd", "local")
    flags = [op["value"] for op in json.loads(etcd_local["patches"]["etcd+json.json"])]
    assert f"--initial-cluster={NAMES[0]}=https://{NAMES[0]}:2380,{NAMES[1]}=https://{NAMES[1]}:2380" in flags
    assert "--initial-cluster-state=existing" in flags
    document = yaml.safe_load(run.kubeadm("join", "phase", "preflight")[0]["config"])
    assert document["discovery"]["bootstrapToken"] == {
        "apiServerEndpoint": "gke-abcd1234-cp-0123456789abcdef.elb.us-east-1.amazonaws.com:443",
        "token": JOIN_TOKEN,
        "caCertHashes": [CA_HASH],
    }
    assert "unsafeSkipCAVerification" not in document["discovery"]["bootstrapToken"]
    assert document["controlPlane"] == {"localAPIEndpoint": {"advertiseAddress": "10.0.1.10", "bindPort": 6443}}
    # kubeadm's own etcd join (under the instance's address) never runs, not even in a full join.
    assert document["skipPhases"] == ["etcd-join", "control-plane-join/etcd"]
    assert document["nodeRegistration"]["ignorePreflightErrors"] == ["KubeletVersion"]
    registration = {a["name"]: a["value"] for a in document["nodeRegistration"]["kubeletExtraArgs"]}
    assert registration["node-labels"] == "kubestep.io/replica=1"
    assert not run.applied()
    joined = box.etcd_members()[-1]
    assert joined["peer"] == f"https://{NAMES[1]}:2380" and joined["learner"] is False and joined["status"] == "started"
    assert report(run)["status"]["S"] == "ok"


def test_replacement_with_its_volume_restarts_as_the_same_member(tmp_path):
    box = sandbox(
        tmp_path, 2, state={"items": initialised(0), "members": [member(0), member(1), member(2)]}, data_on_volume=True
    )
    run = box.run()
    assert run.returncode == 0, run.stderr
    assert not run.commands("mkfs.ext4")
    assert not [a for a in run.commands("etcdctl") if a[:1] == ["member"] and a[1] in ("add", "remove", "promote")]
    assert not run.kubeadm("join") and not run.kubeadm("init", "--config")
    phases = [" ".join(c["args"][2 : c["args"].index("--config")]) for c in run.kubeadm("init", "phase")]
    assert phases == [
        "certs all",
        "kubeconfig all",
        "etcd local",
        "control-plane all",
        "kubelet-start",
        "mark-control-plane",
        # kubelet.conf's year-long certificate replaced by the kubelet's rotating one.
        "kubelet-finalize all",
    ]
    (etcd_local,) = run.kubeadm("init", "phase", "etcd", "local")
    assert "--initial-cluster-state=existing" in etcd_local["patches"]["etcd+json.json"]
    assert not [a for a in run.aws("dynamodb", "put-item")[:-1] if "INIT" in " ".join(a)], (
        "no init claim: the volume decides"
    )
    # The cluster runs this version and its add-ons: nothing to upgrade, no add-on claim.
    assert not run.kubeadm("upgrade") and not run.applied()
    assert len(box.etcd_members()) == 3
    assert report(run)["checks"]["M"]["etcdMembers"] == {"N": "3"}


def test_replacement_with_an_empty_volume_removes_the_stale_member_then_joins_as_a_learner(tmp_path):
    box = sandbox(tmp_path, 1, state={"items": initialised(0), "members": [member(0), member(1), member(2)]})
    run = box.run()
    assert run.returncode == 0, run.stderr
    etcd = [a for a in run.commands("etcdctl") if a[:1] == ["member"]]
    assert etcd[:3] == [
        ["member", "list", "-w", "json"],
        ["member", "remove", f"{0x1001:x}"],
        ["member", "add", NAMES[1], f"--peer-urls=https://{NAMES[1]}:2380", "--learner"],
    ]
    assert ["member", "promote", f"{len([0, 2]) + 0xA0:x}"] in etcd
    assert len(run.commands("mkfs.ext4")) == 1
    assert run.kubeadm("join", "phase", "preflight") and not run.kubeadm("init", "--config")
    assert [m["peer"] for m in box.etcd_members()].count(f"https://{NAMES[1]}:2380") == 1
    assert report(run)["status"]["S"] == "ok"


def test_a_claim_held_by_another_replica_means_join_never_init(tmp_path):
    items = initialised(2)
    items[INIT_KEY]["status"]["S"] = "initializing"
    box = sandbox(tmp_path, 0, state={"items": items, "members": [member(2)]})
    run = box.run()
    # It waits for `initialized` (three attempts here), and never initialises itself.
    assert run.returncode != 0
    assert not run.kubeadm("init", "--config") and not run.kubeadm("join")
    assert report(run)["status"]["S"] == "failed:wait-initialized"


def test_a_predecessor_that_claimed_and_died_before_etcd_had_data_is_succeeded_by_init(tmp_path):
    items = initialised(0)
    items[INIT_KEY]["status"]["S"] = "initializing"
    box = sandbox(tmp_path, 0, state={"items": items})
    run = box.run()
    assert run.returncode == 0, run.stderr
    assert len(run.kubeadm("init", "--config")) == 1
    assert box.dynamodb_items()[INIT_KEY]["status"]["S"] == "initialized"


# ---------------------------------------------------------------- reboot and failures


def test_reboot_remounts_reregisters_and_reports_without_bootstrapping_again(tmp_path):
    box = sandbox(tmp_path, 0)
    assert box.run().returncode == 0
    run = box.run()
    assert run.returncode == 0, run.stderr
    assert not run.kubeadm("init") and not run.kubeadm("join") and not run.commands("apt-get")
    assert not run.commands("mkfs.ext4") and not run.applied()
    assert [str(box.file("/var/lib/kubestep/etcd-volume"))] in run.commands("mount")
    assert run.aws("route53", "change-resource-record-sets")
    assert len(box.read("/etc/fstab").splitlines()) == 1
    assert report(run)["status"]["S"] == "ok"


def test_a_failed_kubeadm_init_is_reported_with_its_phase_and_stops(tmp_path):
    box = sandbox(tmp_path, 0, fail=["^kubeadm init --config"])
    run = box.run()
    assert run.returncode != 0
    assert report(run)["status"]["S"] == "failed:kubeadm-init"
    assert not run.applied()
    assert box.read("/var/lib/kubestep/failed-phase").strip() == "kubeadm-init"
    # A later boot never retries in place; it reports the failure again.
    again = box.run()
    assert again.returncode != 0 and not again.kubeadm("init")
    assert report(again)["status"]["S"] == "failed:kubeadm-init"


def test_a_calico_manifest_with_another_checksum_is_refused(tmp_path, monkeypatch):
    pinned = components.calico_manifest
    monkeypatch.setattr(components, "calico_manifest", lambda minor: (pinned(minor)[0], "0" * 64))
    box = sandbox(tmp_path, 0)
    run = box.run()
    assert run.returncode != 0
    assert report(run)["status"]["S"] == "failed:cni"
    assert not run.applied()


def test_unhealthy_etcd_is_reported_with_the_checks(tmp_path):
    box = sandbox(tmp_path, 0, fail=["^etcdctl .*endpoint health"])
    run = box.run()
    item = report(run)
    assert item["status"]["S"] == "failed:health"
    assert item["checks"]["M"]["etcdHealthy"] == {"BOOL": False}
    assert item["checks"]["M"]["apiserverReady"] == {"BOOL": True}


def test_a_volume_with_a_foreign_filesystem_is_never_formatted(tmp_path):
    box = sandbox(tmp_path, 0, filesystem="xfs")
    run = box.run()
    assert report(run)["status"]["S"] == "failed:etcd-volume"
    assert not run.commands("mkfs.ext4")


def test_a_xen_instance_finds_the_volume_as_xvdf(tmp_path):
    box = Sandbox(tmp_path, control_plane(0), {"secrets": SECRETS})
    box.file("/dev").mkdir()
    box.file("/dev/xvdf").write_text("")
    run = box.run()
    assert run.returncode == 0, run.stderr
    assert run.commands("mkfs.ext4")[0][-1] == str(box.file("/dev/xvdf"))


def test_a_failure_before_the_instance_is_known_is_still_reported(tmp_path):
    box = sandbox(tmp_path, 0, fail=["^curl .*meta-data/instance-id"])
    run = box.run()
    item = report(run)
    # set -u: the trap uses only what is already set.
    assert item["status"]["S"] == "failed:metadata" and item["instanceId"]["S"] == "unknown"
    assert item["sk"]["S"] == keys.replica_report_sk(0) and "unbound variable" not in run.stderr


# ---------------------------------------------------------------- join tokens


def test_token_refresh_runs_as_a_minted_identity_never_admin_conf_and_keeps_tokens_off_command_lines(tmp_path):
    box = sandbox(tmp_path, 0)
    assert box.run().returncode == 0  # the timer runs only after a successful bootstrap
    run = box.run("/usr/local/sbin/kubestep-bootstrap", "refresh-tokens")
    assert run.returncode == 0, run.stderr
    (mint,) = run.kubeadm("kubeconfig", "user")
    assert mint["args"] == [
        "kubeconfig",
        "user",
        "--config",
        str(box.file("/etc/kubestep/kubeadm/init.yaml")),
        "--client-name",
        "kubestep:bootstrap-token-manager",
        "--validity-period",
        "1h",
    ]
    (apply,) = [c for c in run.calls if c["cmd"] == "kubectl" and "apply" in c["args"]]
    (secret,) = yaml.safe_load(apply["file"])["items"]
    assert secret["type"] == "bootstrap.kubernetes.io/token"
    assert secret["stringData"]["token-id"] + "." + secret["stringData"]["token-secret"] == JOIN_TOKEN
    for call in run.calls:
        assert "admin.conf" not in " ".join(call["args"])
        assert JOIN_TOKEN not in " ".join(call["args"]), call


# ---------------------------------------------------------------- the report timer

OLDER_API_SERVER = ["registry.k8s.io/kube-apiserver:v1.35.4", "registry.k8s.io/kube-apiserver:v1.34.13"]


def upgraded_replica(tmp_path) -> Sandbox:
    """Replica 2 restarted at 1.35.4 during an upgrade from 1.34.13, while another replica still
    runs 1.34.13: its boot upgrades its node but leaves the add-ons."""
    state = {"items": initialised(0), "members": [member(0), member(1), member(2)]}
    box = sandbox(
        tmp_path, 2, state=state, data_on_volume=True, addons_version="1.34.13", apiserver_images=OLDER_API_SERVER
    )
    run = box.run()
    assert run.returncode == 0, run.stderr
    assert run.kubeadm("upgrade", "node") and not run.applied()
    assert ADDONS_KEY not in box.dynamodb_items()
    return box


def change_scenario(box: Sandbox, **changes) -> None:
    path = box.base / "scenario.json"
    path.write_text(json.dumps(json.loads(path.read_text()) | changes))


def test_the_report_timer_applies_lagging_add_ons_once_the_whole_control_plane_runs_this_version(tmp_path):
    box = upgraded_replica(tmp_path)
    change_scenario(box, apiserver_images=["registry.k8s.io/kube-apiserver:v1.35.4"] * 3)
    timer = box.run("/usr/local/sbin/kubestep-bootstrap", "report")
    assert timer.returncode == 0, timer.stderr
    assert len(timer.applied()) == 6
    assert box.dynamodb_items()[ADDONS_KEY]["status"]["S"] == "applied"
    assert report(timer)["source"]["S"] == "timer"
    # Once: the next report applies nothing.
    assert not box.run("/usr/local/sbin/kubestep-bootstrap", "report").applied()


def test_a_report_of_the_whole_control_plane_stops_the_fast_report_timer(tmp_path):
    box = upgraded_replica(tmp_path)
    timer = box.run("/usr/local/sbin/kubestep-bootstrap", "report")
    assert timer.returncode == 0, timer.stderr
    checks = report(timer)["checks"]["M"]
    assert checks["etcdMembers"] == {"N": "3"} and checks["etcdHealthy"] == checks["apiserverReady"] == {"BOOL": True}
    assert timer.calls[-1]["args"] == ["stop", "kubestep-report-soon.timer"]


def test_a_report_missing_a_member_keeps_the_fast_report_timer(tmp_path):
    state = {"items": initialised(0), "members": [member(0), member(1), member(2, status="unstarted")]}
    box = sandbox(tmp_path, 2, state=state, data_on_volume=True)
    run = box.run()
    assert run.returncode == 0, run.stderr
    box.state.write_text(json.dumps(json.loads(box.state.read_text()) | {"members": [member(0), member(1)]}))
    timer = box.run("/usr/local/sbin/kubestep-bootstrap", "report")
    assert timer.returncode == 0, timer.stderr
    assert report(timer)["checks"]["M"]["etcdMembers"] == {"N": "2"}
    assert timer.calls[-1]["args"] == ["start", "kubestep-report-soon.timer"]


def test_a_failed_add_on_is_never_marked_applied_and_the_report_is_still_written(tmp_path):
    box = upgraded_replica(tmp_path)
    change_scenario(
        box,
        apiserver_images=["registry.k8s.io/kube-apiserver:v1.35.4"] * 3,
        fail=["^kubectl .*apply .*cloud-controller-manager"],
    )
    timer = box.run("/usr/local/sbin/kubestep-bootstrap", "report")
    assert timer.returncode == 0, timer.stderr
    # Calico went in, the cloud controller manager's apply failed, and nothing was applied after it.
    calico, ccm = timer.applied()
    assert "aws-cloud-controller-manager" in ccm
    assert box.dynamodb_items()[ADDONS_KEY]["status"]["S"] == "applying"
    assert report(timer)["status"]["S"] == "ok" and report(timer)["source"]["S"] == "timer"


def test_a_replica_that_cannot_read_the_restore_request_does_not_start_etcd(tmp_path):
    """Unreadable (after its retries), the restore request fails the boot before anything starts
    etcd: a replica must not start on data a restore is replacing. The report says why."""
    box = sandbox(tmp_path, 1, state={"items": admins_item()}, fail=[r"dynamodb get-item .*ACCESS#.*RESTORE"])
    run = box.run()
    assert run.returncode == 1
    assert len([a for a in run.aws("dynamodb", "get-item") if "RESTORE" in " ".join(a)]) == 5
    assert not run.kubeadm("init") and not run.kubeadm("join")
    report = box.dynamodb_items()[f"{keys.bootstrap_pk('abcd1234')}|{keys.REPLICA_REPORT_PREFIX}1"]
    assert report["status"] == {"S": "failed:etcd-restore"}
    assert report["checks"] == {"M": {"restoreError": {"S": "could not read the restore request"}}}
