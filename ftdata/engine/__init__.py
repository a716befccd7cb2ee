"""The lint engine, in the order a run uses it.

- :mod:`~ftdata.engine.plan`: Settings compiled once into a frozen Plan; preflight.
- :mod:`~ftdata.engine.scan`: ``scan_shard(shard, plan)``, the streaming pass every executor runs.
- :mod:`~ftdata.engine.locate`: an Issue becomes a Finding at its line and column.
- :mod:`~ftdata.engine.merge`: shard results merged in file order.
- :mod:`~ftdata.engine.run`: one source end to end (pass, dataset rules, cross-file rules).

Nothing is imported here, so that rules can import the dataset views without the engine.
"""
