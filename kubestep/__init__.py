"""kubestep: Kubernetes clusters on AWS, run by a serverless management service on Step Functions."""

__version__ = "0.1.0"
