"""cidx: local-first semantic code and document search.

A hybrid (dense + BM25) index that lives inside the project, in
`.code-indexer/`, built by a bundled offline model and kept in sync with the
files. The command line is `cidx`; `cidx.service` is the entry point for
programs.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
