"""The `make demo` job (job.py: render synthetic faces, train within a budget, report) and its HTML report
(report_page.py; report_grids.py: source | redirected | exact target | blur control grids; sweeps.py: gaze and
head sweeps of one held-out person beside their exact renders). May import everything but commands/."""
