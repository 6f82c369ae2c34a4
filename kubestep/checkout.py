"""How kubestep is installed, and where its checkout is.

No package index serves kubestep: it is installed from a checkout of its repository. The wheel
(`pip install .`, `pipx install .`) holds the `kubestep` package only -- the CLI, the API client,
the models -- which is all a user of a deployed management service needs. The embedded local
runtime (`kubestep_local/`) deploys the checkout's own CDK app (`app.py`, `infra/`, `lambdas/`,
`stepfunctions/`), so it runs from the checkout: an editable install (`pip install -e
'.[local]'`) leaves `kubestep` in the checkout, and the CLI finds the runtime beside it.

Only the standard library: the Lambda asset carries this package too."""

from __future__ import annotations

import sys
from pathlib import Path

# What makes a directory a kubestep checkout the local runtime can run from.
_MARKERS = ("kubestep_local/__init__.py", "infra/app.py", "app.py", "stepfunctions", "lambdas")

INSTALL_CLI = "pipx install . (or pip install .) in a checkout of kubestep"
INSTALL_LOCAL = "pip install -e '.[local]' in the kubestep checkout (or run bash scripts/demo.sh there)"
# What kubectl prints when the exec plugin of a context `get-credentials` wrote is not on PATH.
KUBECONFIG_INSTALL_HINT = (
    "kubestep is the CLI that wrote this context: activate the virtualenv it lives in, or install it "
    f"with `{INSTALL_CLI}`"
)


def source_tree() -> Path | None:
    """The checkout this `kubestep` package was imported from, or None for a wheel install (the
    package then lives in site-packages, with no local runtime beside it)."""
    root = Path(__file__).resolve().parent.parent
    return root if all((root / marker).exists() for marker in _MARKERS) else None


def local_runtime_importable() -> Path | None:
    """Make the checkout's `kubestep_local` (and the CDK app it synthesizes) importable; return
    the checkout, or None when there is none. An editable install maps only the `kubestep`
    package, so the checkout itself goes on the path, as `python app.py` has it."""
    root = source_tree()
    if root is not None and str(root) not in sys.path:
        sys.path.append(str(root))
    return root


def local_install_hint(root: Path | None = None) -> str:
    """The command that installs the local runtime's packages, naming the checkout when known."""
    root = root or source_tree()
    if root is None:
        return INSTALL_LOCAL
    return f"pip install -e '.[local]' in {root} (or run bash scripts/demo.sh there)"
