"""The tracking engine: what runs inside the training process.

``_run`` (Run, init), ``_writer`` (the background writer thread), ``_lifecycle`` (exit,
signal and fork hooks), ``_config`` (Config and Summary mappings) and ``console`` (the live
terminal panel). The public names are re-exported by :mod:`labledger`; the integrations,
which sit below the public API, import them from here.
"""

from __future__ import annotations

from ._run import Run, active_run, init, is_repro_target

__all__ = ["Run", "active_run", "init", "is_repro_target"]
