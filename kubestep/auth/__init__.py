"""Reaching a cluster: aws-iam-authenticator tokens (`token`) and kubeconfig contexts
(`kubeconfig`), shared by the CLI and the tests."""
