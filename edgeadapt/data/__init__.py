"""Datasets: specs such as ``xquad:de``, readers of each format into one example type, fetching,
and synthetic data generators.

- ``languages``: ISO 639-1/-3 codes, names and each dataset's naming (``normalize_lang``)
- ``readers``: one reader per file format (SQuAD JSON, AfriQA JSON lines, FLORES lines, PAWS-X TSV)
- ``specs``: ``name:lang:split`` specs, the data directory, ``load_qa`` / ``load_parallel`` /
  ``load_sentence_pairs``, the default training data of a language
- ``catalog``: what is present (``edgeadapt data list``)
- ``sources`` and ``fetch``: upstream addresses, recorded sha256s, downloads (``edgeadapt data fetch``)
"""
