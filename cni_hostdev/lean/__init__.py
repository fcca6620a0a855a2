"""Lean stand-ins for standard modules: what a CNI call needs of json (`json`), ctypes (`libc`) and
contextlib (`contextlib`), without what those modules import.

Every exec pays for every module it loads. Each stand-in here pays for itself (`make tricks`
measures each alone: the README's table) and is held to what it replaces by a test
(tests/unit/test_lean_*.py); one that saves less than 0.5 ms goes back to the standard module.
"""
