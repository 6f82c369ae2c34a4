"""The rule for cluster and node pool names, apart from the pydantic models (kubestep.models
uses it): the CLI checks a name on the command line before any request, without them."""

from __future__ import annotations

# DNS-1123 label; 40 characters like GKE cluster names, which keeps every derived AWS name
# (tags, ASG names) far inside AWS limits. AWS names that have tight limits use the uid.
NAME_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
