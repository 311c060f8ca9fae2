"""The `make demo` job (job.py: render synthetic faces, train within a budget, report) and its HTML report
(report_page.py). May import everything but commands/."""
