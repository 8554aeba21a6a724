"""Semantic and hybrid search over stored comments: FAISS vector index + BM25 keyword relevance."""
