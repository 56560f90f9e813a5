"""Memory: resumable chunked ingestion, profiles, the embedding pipeline into Qdrant, search and retention."""
