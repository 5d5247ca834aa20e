"""Onlooker: the command that wires the edge agent, the wire and the dashboard together."""
