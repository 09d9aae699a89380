"""Container names generated as Docker generates them (spec/names.py checks them)."""

import random


_ADJECTIVES = ("brave calm eager fancy gentle happy jolly keen lucid merry nifty quirky "
               "sharp silly sleepy stoic sweet tender upbeat vibrant wizardly zealous").split()
_SURNAMES = ("babbage curie darwin einstein fermi galileo hopper hypatia kepler lovelace "
             "meitner newton noether pascal ritchie shannon thompson torvalds turing wozniak").split()


def random_name(taken):
    while True:
        name = f"{random.choice(_ADJECTIVES)}_{random.choice(_SURNAMES)}"
        if name not in taken:
            return name
        name += str(random.randint(0, 9))
        if name not in taken:
            return name
