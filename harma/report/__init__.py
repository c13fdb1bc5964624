"""harma.report: Plotly HTML pages built from the Parquet results tables, "data, then figure".

Tidy tables come first and are unit-tested (stats, frames, arms, search, overrides), figures are built from
those tables (figures, search_figures), and pages assemble them into offline HTML (html, pages,
arms_page, search_page).  Entry points: `build_study_report`, `build_index`, and the CLI hook
`add_report_commands` in harma.report.cli.
"""
from harma.report.cli import add_report_commands, build_index, build_study_report

__all__ = ["build_study_report", "build_index", "add_report_commands"]
