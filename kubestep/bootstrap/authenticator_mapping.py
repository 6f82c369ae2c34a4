"""The cluster's administrators as aws-iam-authenticator serves them on a control-plane replica.

The one rendering of the authenticator's mapping is `QUERY`, a JMESPath expression over the
cluster administrators item (`kubestep.store.admins`: its ARNs already in the form the
authenticator matches, roles without their path). A replica reads the item with
`aws dynamodb get-item --query "$ADMINS_MAPPING_QUERY" --output json`, so the AWS CLI itself
turns the item into the mapping file, and the rendering ships as one line of the replica's
settings rather than as code in its size-limited user-data.

The file is the authenticator's `DynamicFile` backend: kubernetes-sigs/aws-iam-authenticator
`pkg/fileutil/util.go` (`StartLoadDynamicFile`) watches it with fsnotify and reloads it on a
write or create; a rename over it ends that watch and the loop around it (`wait.Until`, every
second) loads the new file, so an atomic replace is served within seconds, with no restart of
the authenticator or the API server (the `MountedFile` mapping is read once, at start). Its
format is `DynamicFileData` in `pkg/mapper/dynamicfile/dynamicfile.go`: `mapRoles` (`rolearn`,
`username`, `groups`), `mapUsers` (`userarn`, `username`, `groups`), `mapAccounts`, and
`Version`, here the item's generation, so the file itself says which generation the replica
serves. (`LastUpdatedDateTime`, Unix seconds for the authenticator's latency metric, is left
out: the item records its time as ISO 8601, and the metric is only skipped with a log line.)"""

from __future__ import annotations

from typing import Any

import jmespath

# The group the add-ons bind to cluster-admin.
GROUP = "kubestep:cluster-admins"

# A role's sessions are its users (the session name tells who assumed it); a user is itself.
# JSON literals (backticks) rather than raw strings: the expression has no single quote, so it
# ships as one plainly quoted shell word.
_GROUPS = f'`["{GROUP}"]`'
QUERY = (
    "Item.{Version:generation.N,"
    f'mapRoles:roleARNs.L[].{{rolearn:S,username:join(`""`,[S,`"/{{{{SessionName}}}}"`]),groups:{_GROUPS}}},'
    f"mapUsers:userARNs.L[].{{userarn:S,username:S,groups:{_GROUPS}}},"
    "mapAccounts:`[]`}"
)


def render(item: dict[str, Any]) -> dict[str, Any] | None:
    """The mapping file's document for an administrators item as GetItem returns it (DynamoDB
    JSON), exactly what the replica's AWS CLI writes; None for no item."""
    return jmespath.search(QUERY, {"Item": item} if item else {})
