"""What the tests, the policy check and the local run stand on: the Pulumi program under mocks
(mocks.py, with the SDK internals it needs pinned in pulumi_internals.py), the stack's
configuration as the CLI merges it (stack_config.py), and moto: its server with the local
run's fixes (moto_server.py) and the stores the program declares, created in it (provision.py)."""
