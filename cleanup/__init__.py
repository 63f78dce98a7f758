"""Tidying the collection after a review (moving copies aside); never deleting."""
