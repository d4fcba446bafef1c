"""SQuAD v1.1 / v2.0 extractive question answering (sliding windows, n-best spans, official EM/F1)."""
