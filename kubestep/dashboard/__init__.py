"""`kubestep dashboard`: one page over every cluster of one or more management services (GKE
Connect's console, for kubestep), served on loopback by a small standard-library HTTP server
that proxies the page's API calls to each management API, signed as the CLI signs them
(a browser cannot sign SigV4; `kubectl proxy` solves the same problem the same way)."""

from kubestep.dashboard.proxy import ALLOWED_ROUTES, ProxyError, allowed_route
from kubestep.dashboard.server import DashboardServer, DashboardTarget

__all__ = ["ALLOWED_ROUTES", "DashboardServer", "DashboardTarget", "ProxyError", "allowed_route"]
