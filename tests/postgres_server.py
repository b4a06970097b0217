"""A real PostgreSQL server for tests: ``initdb`` + ``pg_ctl`` in a temporary directory on a free port.

Debian's PostgreSQL (``scripts/setup.sh`` installs it when ``initdb`` is missing) refuses to run as
root, so as root the server runs as the ``postgres`` user from a directory handed to it. The server
listens on 127.0.0.1 only, with trust authentication for the one ``autoheal`` role; every test
database is created fresh (``new_database``) so tests never see each other's rows.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["PostgresServer", "find_pg_bin", "postgres_server"]

_ROLE = "autoheal"


def find_pg_bin() -> Path:
    """The directory of ``initdb``/``pg_ctl``: on PATH, else Debian's newest ``/usr/lib/postgresql/N/bin``."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if not versions:
        raise RuntimeError("PostgreSQL is not installed (initdb not found); run scripts/setup.sh")
    return versions[-1].parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """One PostgreSQL cluster in a temp directory; ``stop()`` removes the process and the files."""

    def __init__(self, fsync: bool = False) -> None:
        """Create and start the cluster; ``fsync`` keeps PostgreSQL's durable default (tests turn it off for speed)."""
        self.fsync = fsync
        self.bin = find_pg_bin()
        self.port = _free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="autoheal-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.dir, user.pw_uid, user.pw_gid)
            self._as_user = ["runuser", "-u", "postgres", "--"]
        self._run("initdb", "-D", str(self.data), "-U", _ROLE, "--auth=trust", "-E", "UTF8", "--no-sync")
        self.start()

    def _run(self, program: str, *args: str) -> None:
        proc = subprocess.run(
            [*self._as_user, str(self.bin / program), *args],
            capture_output=True, text=True, timeout=120, check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"{program} failed ({proc.returncode}): {proc.stderr or proc.stdout}\n{self.log_tail()}")

    def log_tail(self, limit: int = 4000) -> str:
        with contextlib.suppress(OSError):
            return self.log.read_text(errors="replace")[-limit:]
        return ""

    @property
    def url(self) -> str:
        """The maintenance database's URL (create test databases from it)."""
        return self.url_for("postgres")

    def url_for(self, database: str) -> str:
        return f"postgresql://{_ROLE}@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        """Start (or restart after ``stop_server``) and wait until it accepts connections."""
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} -c max_connections=200"
        if not self.fsync:
            options += " -c fsync=off"
        self._run("pg_ctl", "start", "-w", "-t", "120", "-D", str(self.data), "-l", str(self.log), "-o", options)

    def stop_server(self, mode: str = "fast") -> None:
        """Stop the server but keep its data (``mode`` ``immediate`` is a crash: no shutdown checkpoint)."""
        self._run("pg_ctl", "stop", "-w", "-t", "120", "-m", mode, "-D", str(self.data))

    def new_database(self) -> str:
        """Create an empty database and return its URL."""
        import psycopg

        name = "t_" + secrets.token_hex(6)
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url_for(name)

    def stop(self) -> None:
        """Stop the server (if running) and delete its directory."""
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(RuntimeError):
                self.stop_server("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer()
    try:
        yield server
    finally:
        server.stop()
