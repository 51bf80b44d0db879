"""Adapters that plug flowsched schedules into other frameworks.

Each adapter is its own module and imports its framework only when that module is imported
(``import flowsched`` never imports them):

* :mod:`flowsched.integrations.diffusers` -- ``with_schedule(pipe.scheduler, spec)``: the pipeline's own diffusers
  scheduler (FlowMatchEuler, or UniPC with its solver kept) walking a flowsched schedule
  (``pip install 'flowsched[diffusers]'``).
"""

__all__: list[str] = []  # the adapters are submodules, each imported by its own name
