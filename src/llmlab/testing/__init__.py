"""Fakes and contract suites that ship with llmlab for fast, honest tests."""
