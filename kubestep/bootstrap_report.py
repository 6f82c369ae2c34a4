"""The bootstrap report (moved to kubestep.bootstrap.report; kept for the local instance simulator)."""

from kubestep.bootstrap.report import record_report, report_item, report_key

__all__ = ["record_report", "report_item", "report_key"]
