"""The limits inputs are checked against before anything is created, each with its source.

Anything that would fail late (a tag limit hit by the tenth API call of a create) or starve the
management service (one create asking for a thousand instances) is refused up front."""

from __future__ import annotations

# AWS: at most 50 user tags per resource, for EC2, Auto Scaling groups, ELB and Secrets Manager
# (https://docs.aws.amazon.com/tag-editor/latest/userguide/tagging.html#tag-conventions).
MAX_TAGS_PER_RESOURCE = 50
# Auto Scaling puts aws:autoscaling:groupName, aws:ec2launchtemplate:id and :version on the
# instances it launches. AWS does not count `aws:` tags, the emulator (moto) does: leave room.
AWS_INSTANCE_TAGS = 3
# Tags kubestep puts on every resource of a cluster besides the user's: the service, cluster
# name, uid, kubernetes.io/cluster/<uid>, created-by, Name, role, replica or node pool, and the
# spec an instance was launched with.
KUBESTEP_TAGS = 9
# The cluster autoscaler's enabled and ownership tags on every node-pool group.
AUTOSCALER_TAGS = 2

# kubeadm configures kube-controller-manager with --allocate-node-cidrs and the IPv4 default
# --node-cidr-mask-size=24: every node (control plane included) takes a /24 of the pod range.
NODE_CIDR_PREFIX = 24
# kube-apiserver refuses a --service-cluster-ip-range larger than /12 for IPv4
# (pkg/controlplane/apiserver/options: "specified --service-cluster-ip-range is too large").
LARGEST_SERVICE_PREFIX = 12
# kubeadm gives the cluster DNS service the 10th address of the service range, and the
# `kubernetes` service the 1st: at least 16 addresses.
SMALLEST_SERVICE_PREFIX = 28

# One operation may launch at most this many instances at once (control plane + every node
# pool's minNodeCount): EC2's RunInstances token bucket refills at 2/s, and a larger create
# would hold the management service's Lambda concurrency for everyone else. Larger pools grow
# through their maxNodeCount (the cluster autoscaler) or later operations.
MAX_INSTANCES_PER_OPERATION = 100
MAX_NODE_POOLS_PER_CLUSTER = 20
# Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances, in vCPUs (Service Quotas).
STANDARD_VCPU_QUOTA = ("ec2", "L-1216C47A")
