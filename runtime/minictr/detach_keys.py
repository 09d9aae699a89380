from minictr.spec.detach_keys import DEFAULT, Matcher, parse  # noqa: F401  re-export: lead removes after merge
