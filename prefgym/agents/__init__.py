"""Agents that optimise a policy against a learned reward."""
