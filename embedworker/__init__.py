"""embedworker: keeps pgvector embeddings in step with a Postgres queue."""

__version__ = "0.1.0"
