"""The tracking engine: what runs inside the training process.

``_run`` (Run, init), ``_writer`` (the background writer thread), ``_lifecycle`` (exit,
signal and fork hooks), ``_config`` (Config and Summary mappings) and ``console`` (the live
terminal panel). The public names are re-exported by :mod:`labledger`.
"""
