"""The lint engine, in the order a run uses it.

- :mod:`~ftdata.engine.plan`: Settings compiled once into a frozen Plan (what rules read,
  loaded once); preflight.
- :mod:`~ftdata.engine.scan`: ``scan_shard(shard, plan)``, the streaming pass every executor runs.
- :mod:`~ftdata.engine.locate`: an Issue becomes a Finding at its line and column.
- :mod:`~ftdata.engine.merge`: shard results merged in file order.
- :mod:`~ftdata.engine.run`: one source end to end (pass, dataset rules, cross-file rules).
- :mod:`~ftdata.engine.notes`: what a run says that is not a finding (rules that did not apply).
- :mod:`~ftdata.engine.dataset`: the DatasetHandle of a file and the DatasetView each
  dataset rule reads it through.

Nothing is imported here, so that rules can import the dataset views without the engine.
"""
