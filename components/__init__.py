"""The pipeline's ComponentResources, one per role."""
