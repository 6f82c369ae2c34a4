"""A recording stand-in for every system command the bootstrap script runs.

Installed under each command's name on the sandbox's PATH (tests/bootstrap/harness.py). Every
call appends one JSON line to $STUB_LOG: the command, its arguments, and for kubeadm/kubectl
the files they were given as they were at that moment. Behaviour comes from $STUB_SCENARIO
(JSON the test wrote) and a small mutable state ($STUB_STATE: DynamoDB items, etcd members,
volume attachment) so a run sees the effects of its own calls."""

import json
import os
import re
import shutil
import sys

sys.path.insert(0, os.environ["STUB_TESTS_DIR"])
sys.path.append(os.environ["STUB_JMESPATH_DIR"])  # the AWS CLI's --query library, for dynamodb_cli
import dynamodb_cli  # noqa: E402 - the directory of this stub's source, added just above

ROOT = os.environ.get("KUBESTEP_ROOT", "")


def read(path):
    with open(path) as handle:
        return handle.read()


def write(path, text):
    with open(path, "w") as handle:
        handle.write(text)


SCENARIO = json.loads(read(os.environ["STUB_SCENARIO"]))


def load_state():
    with open(os.environ["STUB_STATE"]) as handle:
        return json.load(handle)


def save_state(state):
    with open(os.environ["STUB_STATE"], "w") as handle:
        json.dump(state, handle)


def record(name, args, **extra):
    with open(os.environ["STUB_LOG"], "a") as handle:
        handle.write(json.dumps({"cmd": name, "args": args, **extra}) + "\n")


def option(args, name):
    """The value of `--name value` or `--name=value`."""
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def fails(name, args):
    joined = " ".join([name, *args])
    return any(re.search(pattern, joined) for pattern in SCENARIO.get("fail", []))


# ---------------------------------------------------------------- commands


def curl(args):
    url = next(a for a in args if a.startswith(("http://", "https://")))
    out = option(args, "-o")
    if url.endswith("/api/token"):
        print("imds-token")
    elif "/meta-data/" in url:
        print(SCENARIO["metadata"][url.split("/meta-data/", 1)[1]], end="")
    elif url.endswith("Release.key"):
        write(out, "-----BEGIN PGP PUBLIC KEY BLOCK-----\n")
    elif url == SCENARIO.get("calico_url"):
        shutil.copyfile(SCENARIO["calico_manifest"], out)
    elif url.endswith("/readyz"):
        print("ok")
    else:
        return 22
    return 0


def aws(args):
    service, operation = args[0], args[1]
    state = load_state()
    if service == "dynamodb":
        code = dynamodb_cli.run(state.setdefault("items", {}), operation, args)
        save_state(state)
        return code
    if service == "secretsmanager":
        print(SCENARIO["secrets"][option(args, "--secret-id")])
    elif service == "ec2":
        volume = state.setdefault("volume", SCENARIO.get("volume", {"state": "available", "attachedTo": "None"}))
        if operation == "describe-volumes":
            print(f"{volume['state']}\t{volume['attachedTo']}")
        elif operation == "attach-volume":
            volume.update(state="in-use", attachedTo=option(args, "--instance-id"))
    elif service == "route53" and operation == "change-resource-record-sets":
        print("/change/C0123456789")
    elif service == "s3api" and operation == "put-object":
        # The body must be a readable file (the CLI reads it before the call).
        with open(option(args, "--body"), "rb") as body:
            state.setdefault("uploaded", {})[f"{option(args, '--bucket')}/{option(args, '--key')}"] = len(body.read())
        print(json.dumps({"ETag": '"stub"'}))
    elif service == "s3api" and operation == "get-object":
        code = s3_get_object(state, args)
        save_state(state)
        return code
    save_state(state)
    return 0


def s3_get_object(state, args):
    """`aws s3api get-object --bucket B --key K OUTFILE` (AWS CLI Command Reference, s3api
    get-object): the object's body to OUTFILE, the response as JSON on stdout; an error exits
    254 with the service's message. The scenario's `objects` maps `bucket/key` to a local file;
    `s3_unavailable_attempts` makes that many first calls fail (S3 or IAM not answering yet)."""
    state["s3_attempts"] = state.get("s3_attempts", 0) + 1
    if state["s3_attempts"] <= SCENARIO.get("s3_unavailable_attempts", 0):
        sys.stderr.write("An error occurred (AccessDenied) when calling the GetObject operation: Access Denied\n")
        return 254
    source = SCENARIO.get("objects", {}).get(f"{option(args, '--bucket')}/{option(args, '--key')}")
    if source is None:
        sys.stderr.write(
            "An error occurred (NoSuchKey) when calling the GetObject operation: The specified key does not exist.\n"
        )
        return 254
    shutil.copyfile(source, args[-1])
    print(json.dumps({"ContentLength": os.path.getsize(source), "ServerSideEncryption": "aws:kms"}))
    return 0


def etcdctl(args):
    """etcd's membership API as `etcdctl` 3.4 prints it (`member list -w json`; `member add
    --learner` prints the new --initial-cluster; promote refuses a member that is not a learner)."""
    state = load_state()
    members = state.setdefault("members", SCENARIO.get("etcd_members", []))
    words = [a for a in args if not a.startswith("--")]
    if words[:2] == ["member", "list"]:
        listed = []
        for m in members:
            entry = {"ID": int(m["id"], 16), "peerURLs": [m["peer"]]}
            if m["status"] == "started":
                entry |= {"name": m["name"], "clientURLs": [m["client"]]}
            if m.get("learner"):
                entry["isLearner"] = True
            listed.append(entry)
        print(json.dumps({"members": listed}))
    elif words[:2] == ["member", "remove"]:
        before = len(members)
        members[:] = [m for m in members if m["id"] != words[2]]
        if len(members) == before:
            return 1
        print(f"Member {words[2]} removed from cluster")
    elif words[:2] == ["member", "add"]:
        peer = option(args, "--peer-urls")
        new = {"id": f"{len(members) + 0xA0:x}", "status": "unstarted", "name": "", "peer": peer, "client": ""}
        new["learner"] = "--learner" in args
        members.append(new)
        cluster = ",".join(f"{m['name'] or words[2]}={m['peer']}" for m in members)
        print(f'Member added\n\nETCD_NAME="{words[2]}"\nETCD_INITIAL_CLUSTER="{cluster}"')
        print('ETCD_INITIAL_CLUSTER_STATE="existing"')
    elif words[:2] == ["member", "promote"]:
        member = next((m for m in members if m["id"] == words[2]), None)
        if member is None or not member.get("learner"):
            sys.stderr.write("etcdserver: can only promote a learner member\n")
            return 1
        member["learner"] = False
        print(f"Member {words[2]} promoted in cluster")
    elif words[:2] == ["endpoint", "health"]:
        pass
    elif words[:2] == ["endpoint", "status"]:
        # `endpoint status -w json` (etcd 3.4): the local member's id and the leader's.
        member_id = int(members[0]["id"], 16) if members else 1
        leader = member_id if SCENARIO.get("etcd_leader", True) else member_id + 1
        status = {"header": {"member_id": member_id}, "leader": leader, "dbSize": 24576}
        print(json.dumps([{"Endpoint": "https://127.0.0.1:2379", "Status": status}]))
    elif words[:2] == ["snapshot", "save"]:
        write(words[2], "stub etcd snapshot\n" * 64)
    elif words[:2] == ["snapshot", "status"]:
        size = os.path.getsize(words[2])
        print(json.dumps({"hash": 305419896, "revision": 42, "totalKey": 7, "totalSize": size - 32}))
    save_state(state)
    return 0


def kubeadm(args):
    config = option(args, "--config")
    extra = {}
    if config:
        extra["config"] = read(config)
        patches = os.path.join(ROOT, "etc/kubestep/kubeadm/patches")
        if os.path.isdir(patches):
            extra["patches"] = {name: read(os.path.join(patches, name)) for name in sorted(os.listdir(patches))}
    etcd_patch = extra.get("patches", {}).get("etcd+json.json")
    if etcd_patch and (args[:2] == ["init", "--config"] or args[:4] == ["init", "phase", "etcd", "local"]):
        # The etcd static pod starts: a new cluster's first member, or the added member starting.
        flags = dict(op["value"][2:].split("=", 1) for op in json.loads(etcd_patch))
        state = load_state()
        members = state.setdefault("members", SCENARIO.get("etcd_members", []))
        if args[:2] == ["init", "--config"]:
            members[:] = [
                {
                    "id": "1000",
                    "status": "started",
                    "name": flags["name"],
                    "peer": flags["initial-advertise-peer-urls"],
                    "client": flags["advertise-client-urls"],
                }
            ]
        for m in members:
            if m["peer"] == flags["initial-advertise-peer-urls"]:
                m.update(status="started", name=flags["name"], client=flags["advertise-client-urls"])
        save_state(state)
    return extra


def kubeadm_call(args):
    if args[:2] == ["kubeconfig", "user"]:
        print("apiVersion: v1\nkind: Config\nusers:\n- name: stub\n  user:\n    client-certificate-data: c3R1Yg==\n")
    return 0


def kubectl(args):
    """What the API answers, from the scenario: the cluster's kubeadm-config version, the
    add-ons' version, the kube-apiserver mirror pods, the node's state."""
    words = [a for a in args if not a.startswith("-")]
    if any(a.startswith("--raw=/readyz") for a in args):
        print("ok")
    elif "node" in words and "get" in words:
        taints = SCENARIO.get("node_taints", [])
        node = {
            "spec": {
                "providerID": SCENARIO.get("provider_id", "aws:///us-east-1a/i-0aaaaaaaaaaaaaaa1"),
                "taints": taints,
            },
            "status": {"conditions": [{"type": "Ready", "status": SCENARIO.get("node_ready", "True")}]},
        }
        print(json.dumps(node))
    elif "kubeadm-config" in words:
        version = SCENARIO.get("cluster_version", SCENARIO["version"])
        print(
            json.dumps(
                {"data": {"ClusterConfiguration": f"kind: ClusterConfiguration\nkubernetesVersion: v{version}\n"}}
            )
        )
    elif "kubestep-addons" in words:
        version = SCENARIO.get("addons_version", SCENARIO["version"])
        if version:
            print(json.dumps({"data": {"version": version}}))
    elif "get" in words and "pods" in words:
        images = SCENARIO.get("apiserver_images", [f"registry.k8s.io/kube-apiserver:v{SCENARIO['version']}"])
        pods = [{"spec": {"containers": [{"name": "kube-apiserver", "image": image}]}} for image in images]
        print(json.dumps({"items": pods}))
    elif "get" in words and ("nodes" in words or "secrets" in words):
        print(json.dumps({"items": SCENARIO.get("kube_" + words[words.index("get") + 1], [])}))
    return 0


def blkid(args):
    what = option(args, "-s")
    fstype = load_state().get("filesystem", SCENARIO.get("filesystem"))
    if not fstype:
        return 2
    print(fstype if what == "TYPE" else "0b7ab1e5-0000-4000-8000-00000000e7cd")
    return 0


def main():
    name = os.path.basename(sys.argv[0])
    args = sys.argv[1:]
    extra = kubeadm(args) if name == "kubeadm" else {}
    if name == "kubectl" and "-f" in args:
        extra["file"] = read(option(args, "-f"))
    record(name, args, **extra)
    if fails(name, args):
        sys.stderr.write(f"stub: {name} fails as the scenario asks\n")
        return 1
    if name == "curl":
        return curl(args)
    if name == "aws":
        return aws(args)
    if name == "etcdctl":
        return etcdctl(args)
    if name == "kubectl":
        return kubectl(args)
    if name == "kubeadm":
        return kubeadm_call(args)
    if name == "kubelet":
        print(f"Kubernetes v{SCENARIO['version']}")
    if name == "blkid":
        return blkid(args)
    if name == "mkfs.ext4":
        state = load_state()
        state["filesystem"] = "ext4"
        save_state(state)
    return 0


if __name__ == "__main__":
    sys.exit(main())
