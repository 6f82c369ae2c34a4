"""Writes the control-plane secret's material where kubeadm and the API server read it.

Runs on the instance (python3 of Ubuntu 24.04, standard library only), reading the secret's
JSON from standard input, so no key passes through a command line or an environment variable:

    write_secrets.py PKI_DIR ENCRYPT(true|false) ENCRYPTION_TEMPLATE ENCRYPTION_CONFIG < secret.json
"""

import base64
import binascii
import json
import os
import sys

# secret key -> (file under the PKI dir, mode): kubeadm signs every leaf certificate from these.
PKI_FILES = {
    "ca.crt": ("ca.crt", 0o644),
    "ca.key": ("ca.key", 0o600),
    "etcd-ca.crt": ("etcd/ca.crt", 0o644),
    "etcd-ca.key": ("etcd/ca.key", 0o600),
    "front-proxy-ca.crt": ("front-proxy-ca.crt", 0o644),
    "front-proxy-ca.key": ("front-proxy-ca.key", 0o600),
    "sa.key": ("sa.key", 0o600),
    "sa.pub": ("sa.pub", 0o644),
}


def write(path: str, content: str, mode: int) -> None:
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(content)
    os.chmod(path, mode)


def main() -> int:
    pki_dir, encrypt, template, encryption_config = sys.argv[1:5]
    secret = json.load(sys.stdin)
    missing = sorted(set(PKI_FILES) - set(secret))
    if missing:
        print(f"write_secrets: the control-plane secret lacks {', '.join(missing)}", file=sys.stderr)
        return 1
    for key, (name, mode) in PKI_FILES.items():
        write(os.path.join(pki_dir, name), secret[key], mode)
    if encrypt == "true":
        try:
            key = base64.b64decode(secret.get("encryptionKey", ""), validate=True)
        except binascii.Error:
            key = b""
        if len(key) != 32:
            print("write_secrets: the control-plane secret's encryptionKey is not 32 bytes of base64", file=sys.stderr)
            return 1
        with open(template, encoding="utf-8") as handle:
            text = handle.read().replace("@@ENCRYPTION_KEY@@", base64.b64encode(key).decode())
        write(encryption_config, text, 0o600)
    return 0


if __name__ == "__main__":
    sys.exit(main())
