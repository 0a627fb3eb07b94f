"""The kstlib.ops benchmark: one module per part, one shared runner.

* :mod:`benchmarks.bench`: the entry point (``make bench``, or
  ``python benchmarks/bench.py [--quick] [--only PART[,PART]]``).
* :mod:`benchmarks.runner`: settings, statistics, rows and targets, the
  ``Bench`` that measures variants side by side, the child-process helpers.
* One module per part: :mod:`~benchmarks.startup` (import, ``ops list``),
  :mod:`~benchmarks.tmux`, :mod:`~benchmarks.tmux_scale`,
  :mod:`~benchmarks.containers` (docker, podman), :mod:`~benchmarks.swarm`;
  :mod:`~benchmarks.upstream` drives upstream kstlib in its own virtualenv.
* :mod:`benchmarks.report`: the targets and the printed table.
* ``fleet.py``: a script of its own (one list over many engines).
"""
