"""What kernelwright hands on: exports of judged kernels (report/export.py)."""

from kernelwright.report.export import ExportFormat, ExportRow, rows_for, write

__all__ = ["ExportFormat", "ExportRow", "rows_for", "write"]
