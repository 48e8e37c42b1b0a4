"""The policy pack checked against the program without the Pulumi CLI: the analyzer client
(analyzer.py) and the check command (check.py, run as `python -m policycheck`); and the
mutation run (`python -m policycheck.mutations`), which injects each misconfiguration of the
catalogue (catalogue.py) into the resources playing its target's part (roles.py) with the
injection engine (injection.py) and sees it caught."""
