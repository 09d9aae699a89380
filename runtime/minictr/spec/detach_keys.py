"""Docker's detach keys (`--detach-keys`, the `detachKeys` query parameter): their syntax, and
the matcher that watches a tty's input for them, for the daemon's attach and the CLI alike."""

from minictr.errors import InvalidArgument

DEFAULT = "ctrl-p,ctrl-q"

# Docker's names for the control codes, in code order: ctrl-@ is 0, ctrl-a 1, … ctrl-_ 31.
_CONTROL_NAMES = ["ctrl-@"] + [f"ctrl-{chr(c)}" for c in range(ord("a"), ord("z") + 1)] + [
    "ctrl-[", "ctrl-\\", "ctrl-]", "ctrl-^", "ctrl-_"]


def parse(keys):
    """`ctrl-p,ctrl-q` → b"\\x10\\x11": comma-separated single characters or ctrl-<c>, as Docker reads them."""
    codes = bytearray()
    for key in keys.split(","):
        if len(key) == 1 and key.isascii():
            codes.append(ord(key))
        elif key.lower() in _CONTROL_NAMES:
            codes.append(_CONTROL_NAMES.index(key.lower()))
        else:
            raise InvalidArgument(f"Invalid detach keys ({keys}) provided: Unknown character: '{key}'")
    return bytes(codes)


class Matcher:
    """Finds the detach sequence in a stream of input, holding back bytes that may begin it
    (as Docker's escape proxy does), so that the sequence itself never reaches the container."""

    def __init__(self, keys):
        self.keys = keys
        self._held = 0

    def feed(self, data):
        """(bytes to pass on, whether the sequence is complete); after it, the rest is dropped."""
        out = bytearray()
        for byte in data:
            if self.keys and byte == self.keys[self._held]:
                self._held += 1
                if self._held == len(self.keys):
                    self._held = 0
                    return bytes(out), True
                continue
            out += self.keys[:self._held]
            self._held = 0
            if self.keys and byte == self.keys[0]:
                self._held = 1
                if len(self.keys) == 1:
                    self._held = 0
                    return bytes(out), True
            else:
                out.append(byte)
        return bytes(out), False
