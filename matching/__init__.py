"""Matching: embeddings, FAISS indexes whose ids are database ids, ranking of members/resources/events."""
