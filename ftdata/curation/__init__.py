"""The curation verbs: commands that write or check curated data.

- :mod:`~ftdata.curation.dedup`: ``dedup``, lint with FT401/FT404/FT405, keep one record per group.
- :mod:`~ftdata.curation.leakage`: ``leakage``, records of one file that reappear in another.
- :mod:`~ftdata.curation.split`: ``split``, grouped and stratified assignment; ``split_write`` writes it.
- :mod:`~ftdata.curation.fix`: the safe fixes of the fixable rules.

Nothing is imported here, so that ``import ftdata`` stays quick.
"""
