#!/usr/bin/env python3
"""The kubestep CDK app, for `cdk synth` / `cdk deploy` (cdk.json) and `python app.py`.

Run by the CDK CLI, the assembly goes to `cdk.out/`; run directly, to `$CDK_OUTDIR` or a
temporary directory. The management-service manifest is context `kubestep:managementService`.
"""

from infra.app import build_app

build_app(outdir=None).synth()
