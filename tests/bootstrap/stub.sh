#!/bin/bash
# The fast recording stub for commands whose only behaviour is to succeed (or write the file
# they were asked for); tests/bootstrap/stub.py handles the ones that answer questions.
name=${0##*/}
json() { local s=${1//\\/\\\\}; s=${s//\"/\\\"}; printf '"%s"' "$s"; }
line="{\"cmd\": $(json "$name"), \"args\": ["
sep=
for arg in "$@"; do line+="$sep$(json "$arg")"; sep=", "; done
echo "$line]}" >>"$STUB_LOG"
while IFS= read -r pattern; do
  if [[ "$name $*" =~ $pattern ]]; then echo "stub: $name fails as the scenario asks" >&2; exit 1; fi
done < <(sed -n 's/^fail=//p' "$STUB_SCENARIO.sh")
case "$name" in
  mountpoint) exec grep -q '^mounted=true$' "$STUB_SCENARIO.sh" ;;
  sleep)
    # The cluster harness waits for real processes: a shortened real sleep there.
    if [ -n "${STUB_SLEEP_SCALE:-}" ]; then exec /bin/sleep "$(awk -v s="$1" -v k="$STUB_SLEEP_SCALE" 'BEGIN { print s * k }')"; fi
    ;;
  gpg)
    # The pkgs.k8s.io signing key's fingerprint (or the scenario's), for --show-keys.
    if [[ " $* " == *" --show-keys "* ]]; then
      echo "fpr:::::::::${STUB_GPG_FINGERPRINT:-DE15B14486CD377B9E876E1A234654DA9A296436}:"
      exit 0
    fi
    while [ "$#" -gt 0 ]; do
      case "$1" in -o) echo "stub $1" >"$2"; shift ;; esac
      shift
    done
    ;;
  openssl)
    if [ "${1:-}" = x509 ]; then
      # A certificate the stubbed openssl "made" expires in a year; -checkend: not within the window.
      if [[ " $* " != *" -in "* ]]; then cat >/dev/null; fi
      if [[ " $* " == *" -enddate "* ]]; then echo "notAfter=Dec  1 00:00:00 2027 GMT"; fi
      exit 0
    fi
    while [ "$#" -gt 0 ]; do
      case "$1" in -keyout | -out | -o) echo "stub $1" >"$2"; shift ;; esac
      shift
    done
    ;;
  snap)
    if [ "$1 $2" = "install aws-cli" ]; then
      mkdir -p "$KUBESTEP_ROOT/snap/bin" && ln -s "$STUB_PROGRAM" "$KUBESTEP_ROOT/snap/bin/aws"
    fi
    ;;
esac
exit 0
