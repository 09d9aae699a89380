"""The Docker Engine API as minictr serves it. Importing the package registers every route."""

from minictr.api import containers, events, exec, files, images, logs, networks, registry, stats, swarm, system, volumes  # noqa: F401  (they register routes)
