"""Moving bytes between the terminal and a hijacked attach connection."""

import os
import socket
import struct
import threading


def demux_to_terminal(sock, early):
    """Copy Docker's multiplexed frames (stdout 1, stderr 2) to fds 1 and 2 until the stream ends."""
    buffer = early
    while True:
        while len(buffer) >= 8:
            stream, length = buffer[0], struct.unpack(">I", buffer[4:8])[0]
            if len(buffer) < 8 + length:
                break
            _write_all(2 if stream == 2 else 1, buffer[8:8 + length])
            buffer = buffer[8 + length:]
        data = sock.recv(65536)
        if not data:
            return
        buffer += data


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except BrokenPipeError:
            return


def forward_stdin(sock):
    """Send our stdin to the container in the background; half-close at EOF so its stdin ends too."""

    def pump():
        try:
            while data := os.read(0, 65536):
                sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    threading.Thread(target=pump, daemon=True).start()
