"""Question-answering service (RAG) of llmops.bluegreen."""

__version__ = "0.1.0"
