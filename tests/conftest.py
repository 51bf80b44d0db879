"""Test-wide settings.

Hypothesis runs derandomized (the same examples on every run and machine) so that CI results are
reproducible; set FLOWSCHED_HYPOTHESIS_RANDOM=1 to explore new examples locally.
"""

import os

from hypothesis import settings

settings.register_profile("flowsched", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("explore", deadline=None, print_blob=True)
settings.load_profile("explore" if os.environ.get("FLOWSCHED_HYPOTHESIS_RANDOM") else "flowsched")
