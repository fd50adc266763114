"""Temporal: contracts, the approval workflow, activities, the worker."""
