"""One audit from sign-in to sealed run folder: collect, evaluate, report, drift, notify."""
