"""A local Kanta-compatible backend for tests and demos.

It is a second, independent reading of the Kanta contract (docs/kanta-contract.md): it imports nothing
from the seeder, so a test where both agree checks two readings, not one shared constant.
"""
