"""The storage conformance kit: the contract of DESIGN §6 as pytest tests.

Any adapter runs it unchanged against a real database; see `plugin.py`.
"""
