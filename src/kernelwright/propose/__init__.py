"""Proposers: LLM providers and LLM-free proposers that write candidate kernels."""
