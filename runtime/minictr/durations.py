from minictr.spec.times import rfc3339_to_unix  # noqa: F401  re-export: lead removes after merge
