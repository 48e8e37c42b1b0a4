"""`python -m policycheck --stack dev`: the policy check (policycheck/check.py)."""

import sys

from policycheck.check import main

sys.exit(main())
