"""Docker's vocabulary, on the ground floor: the syntax users type (sizes, mounts, ports, restart
policies, image references, times, …) and the checks of the API bodies that carry it, as pure
functions. The CLI parses with them and the daemon checks every request with the same ones.

Modules here import only the standard library, minictr.errors and each other, and nothing heavy at
module level (the CLI's start-up time is part of every `minictr run`)."""
