"""Container names: checked as Docker checks them, and generated as Docker generates them."""

import random
import re

from minictr.errors import InvalidArgument

_VALID = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")

_ADJECTIVES = ("brave calm eager fancy gentle happy jolly keen lucid merry nifty quirky "
               "sharp silly sleepy stoic sweet tender upbeat vibrant wizardly zealous").split()
_SURNAMES = ("babbage curie darwin einstein fermi galileo hopper hypatia kepler lovelace "
             "meitner newton noether pascal ritchie shannon thompson torvalds turing wozniak").split()


def check_name(name):
    if not _VALID.match(name):
        raise InvalidArgument(f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    return name.lstrip("/")


def random_name(taken):
    while True:
        name = f"{random.choice(_ADJECTIVES)}_{random.choice(_SURNAMES)}"
        if name not in taken:
            return name
        name += str(random.randint(0, 9))
        if name not in taken:
            return name
