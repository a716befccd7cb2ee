"""ftdata_train: from curated data to a LoRA/QLoRA fine-tune with transformers, peft and trl.

Install with ``pip install 'ftdata[train]'``. Nothing heavy is imported until used.
"""
