"""Data quality: declarative rules (rules), one-scan evaluation (runner), metrics history with
anomaly checks (metrics) and a human report (report)."""
