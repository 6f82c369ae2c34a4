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


def dynamodb_text_query(item, query):
    # e.g. Item.[status.S, replica.N]
    fields = re.findall(r"(\w+)\.([SNB])", query.split("[", 1)[1])
    return "\t".join(str(item.get(name, {}).get(kind, "None")) for name, kind in fields)


def aws(args):
    service, operation = args[0], args[1]
    state = load_state()
    if service == "dynamodb":
        items = state.setdefault("items", {})
        if operation == "put-item":
            item = json.loads(option(args, "--item"))
            key = item["pk"]["S"] + "|" + item["sk"]["S"]
            if option(args, "--condition-expression") and key in items:
                sys.stderr.write(
                    "An error occurred (ConditionalCheckFailedException) when calling the PutItem operation: "
                    "The conditional request failed\n"
                )
                return 254
            items[key] = item
        elif operation == "get-item":
            key = json.loads(option(args, "--key"))
            item = items.get(key["pk"]["S"] + "|" + key["sk"]["S"])
            print(dynamodb_text_query(item, option(args, "--query")) if item else "None")
        elif operation == "update-item":
            key = json.loads(option(args, "--key"))
            item = items[key["pk"]["S"] + "|" + key["sk"]["S"]]
            names = json.loads(option(args, "--expression-attribute-names") or "{}")
            values = json.loads(option(args, "--expression-attribute-values"))
            for assignment in option(args, "--update-expression").removeprefix("SET ").split(","):
                target, value = (part.strip() for part in assignment.split("="))
                item[names.get(target, target)] = values[value]
    elif service == "secretsmanager":
        print(SCENARIO["secrets"][option(args, "--secret-id")])
    elif service == "ec2":
        volume = state.setdefault("volume", SCENARIO.get("volume", {"state": "available", "attachedTo": "None"}))
        if operation == "describe-volumes":
            print(f"{volume['state']}\t{volume['attachedTo']}")
        elif operation == "attach-volume":
            volume.update(state="in-use", attachedTo=option(args, "--instance-id"))
    elif service == "route53" and operation == "change-resource-record-sets":
        print("/change/C0123456789")
    save_state(state)
    return 0


def etcdctl(args):
    state = load_state()
    members = state.setdefault("members", SCENARIO.get("etcd_members", []))
    words = [a for a in args if not a.startswith("--")]
    if words[:2] == ["member", "list"]:
        for m in members:
            print(f"{m['id']}, {m['status']}, {m['name']}, {m['peer']}, {m['client']}, false")
    elif words[:2] == ["member", "remove"]:
        before = len(members)
        members[:] = [m for m in members if m["id"] != words[2]]
        if len(members) == before:
            return 1
        print(f"Member {words[2]} removed from cluster")
    elif words[:2] == ["member", "add"]:
        peer = option(args, "--peer-urls")
        new = {"id": f"{len(members) + 0xA0:x}", "status": "unstarted", "name": "", "peer": peer, "client": ""}
        members.append(new)
        cluster = ",".join(f"{m['name'] or words[2]}={m['peer']}" for m in members)
        print(f'Member added\n\nETCD_NAME="{words[2]}"\nETCD_INITIAL_CLUSTER="{cluster}"')
        print('ETCD_INITIAL_CLUSTER_STATE="existing"')
    elif words[:2] == ["endpoint", "health"]:
        pass
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
    if etcd_patch and args[:2] in (["init", "--config"], ["join", "--config"]):
        # The etcd static pod starts: a new cluster's first member, or the added member starting.
        flags = dict(op["value"][2:].split("=", 1) for op in json.loads(etcd_patch))
        state = load_state()
        members = state.setdefault("members", SCENARIO.get("etcd_members", []))
        if args[0] == "init":
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


def kubectl(args):
    if any(a.startswith("--raw=/readyz") for a in args):
        print("ok")
    elif "get" in args and "node" in args:
        print(SCENARIO.get("node_ready", "True"), end="")
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
