"""Recipes that rebuild the expression photos in ../data/faces (docs/expression-data.md)."""
