"""Volumes: Docker's named and anonymous volumes of the local driver."""
