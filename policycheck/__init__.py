"""The policy pack checked against the program without the Pulumi CLI: the analyzer client
(analyzer.py), the check command (check.py, run as `python -m policycheck`) and the mutation
run that injects misconfigurations to see each caught (mutations.py)."""
