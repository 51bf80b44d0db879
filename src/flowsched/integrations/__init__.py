"""Adapters that plug flowsched schedules into other frameworks.

Each adapter is its own module and imports its framework only when that module is imported
(``import flowsched`` never imports them):

* :mod:`flowsched.integrations.diffusers` -- ``FlowschedScheduler``, a diffusers scheduler that runs any
  flowsched schedule inside diffusers flow-matching pipelines (``pip install 'flowsched[diffusers]'``).
"""
