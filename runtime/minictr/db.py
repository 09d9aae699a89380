"""Metadata in SQLite: every change is one transaction, so a crash never leaves half a thing."""

import errno
import os
import sqlite3
import threading
from contextlib import contextmanager

# Kept free beside the database and given up at the first full disk, so that the changes that
# must be recorded (a container's exit, its removal) can still be committed then.
RESERVE_BYTES = 4 * 1024 * 1024


def is_disk_full(error):
    """Whether ERROR is the disk being full: SQLite's SQLITE_FULL or an OSError ENOSPC."""
    if isinstance(error, sqlite3.OperationalError):
        return getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
    return isinstance(error, OSError) and error.errno == errno.ENOSPC


# The database and the files SQLite keeps beside it: a committed transaction may sit in the WAL.
FILE_SUFFIXES = ("", "-wal", "-shm")


class Database:
    """One connection shared by the daemon's threads, serialised by a lock.

    SQLite in WAL mode with synchronous=NORMAL keeps a committed transaction
    across a daemon crash (only a power loss may drop the last ones), and a
    single writer is all minictr needs.
    """

    def __init__(self, path, schemas=()):
        self.path = str(path)
        self._reserve = self.path + ".reserve"
        _make_private(self.path)
        self._conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._conn.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        with self.transaction() as cur:
            for schema in schemas:
                cur.executescript_safe(schema)
        self.make_reserve()

    @contextmanager
    def transaction(self):
        """`with db.transaction() as cur:` runs the block as one BEGIN IMMEDIATE … COMMIT."""
        with self._lock:
            cur = _Cursor(self._conn.cursor())
            cur.execute("BEGIN IMMEDIATE")
            try:
                yield cur
                cur.execute("COMMIT")
            except BaseException:
                # A failed COMMIT (a full disk) may leave the transaction open: end it, or every
                # later BEGIN would fail too.
                if self._conn.in_transaction:
                    cur.execute("ROLLBACK")
                raise

    def query(self, sql, args=()):
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    def query_one(self, sql, args=()):
        rows = self.query(sql, args)
        return rows[0] if rows else None

    def make_reserve(self):
        """Set RESERVE_BYTES aside (again); on a disk too full for it, nothing."""
        if os.path.exists(self._reserve):
            return
        try:
            with open(self._reserve + ".tmp", "wb") as f:
                os.posix_fallocate(f.fileno(), 0, RESERVE_BYTES)
            os.rename(self._reserve + ".tmp", self._reserve)
        except OSError:
            _unlink(self._reserve + ".tmp")

    def release_reserve(self):
        """Give the reserved space back to the filesystem; whether there was any to give."""
        return _unlink(self._reserve)

    def close(self):
        with self._lock:
            self._conn.close()


def _make_private(path):
    """The database and its WAL 0600 before SQLite opens them: they hold containers' environments
    (passwords, tokens). SQLite creates -wal and -shm with the database's mode; ones an older run
    left wider are narrowed too."""
    os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600))
    for suffix in FILE_SUFFIXES:
        try:
            os.chmod(path + suffix, 0o600)
        except FileNotFoundError:
            pass


class _Cursor:
    """A cursor that can also run a multi-statement schema inside the open transaction
    (sqlite3's executescript would COMMIT first)."""

    def __init__(self, cursor):
        self._cursor = cursor

    def __getattr__(self, name):
        return getattr(self._cursor, name)

    def execute(self, sql, args=()):
        return self._cursor.execute(sql, args)

    def executescript_safe(self, script):
        for statement in script.split(";"):
            if statement.strip():
                self._cursor.execute(statement)


def _unlink(path):
    try:
        os.unlink(path)
        return True
    except FileNotFoundError:
        return False
