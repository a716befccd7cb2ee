"""The curation verbs: commands that write or check curated data.

- :mod:`~ftdata.curation.dedup`: ``dedup``, lint with FT401/FT404/FT405, keep one record per group.
- :mod:`~ftdata.curation.leakage`: ``leakage``, lint with FT601-FT603 over the files, one leak per record.
- :mod:`~ftdata.curation.split`: ``split``, grouped and stratified assignment, its advice from
  FT604-FT606; ``split_write`` writes it.
- :mod:`~ftdata.curation.memory`: ``curate``, lint and apply on records in memory
  (:mod:`~ftdata.curation.sources`: lists, ``datasets.Dataset`` and DataFrames as rows).
- :mod:`~ftdata.curation.convert`: ``convert``, between formats into TRL's shapes
  (:mod:`~ftdata.curation.convert_read` reads every dialect into one form,
  :mod:`~ftdata.curation.convert_shapes` cuts the target shapes from it).
- :mod:`~ftdata.curation.fix`: the safe fixes of the fixable rules.

Nothing is imported here, so that ``import ftdata`` stays quick.
"""
