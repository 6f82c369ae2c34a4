"""The dashboard's browser fixtures for these modules: Chromium, `kubestep dashboard` run as a
user runs it against the session's runtime (one per module), a fresh page per test, and an API
client; shared with tests/workflows/test_dashboard.py, where they are defined."""

from tests.workflows.test_dashboard import api, browser, dashboard, page

__all__ = ["api", "browser", "dashboard", "page"]
