"""Exports: BVH writer and stick-figure video rendering."""
