"""A loopback nginx serving a folder: the remote-shard benchmark's server and the test suite's (one launcher).

Why here: ``sardata bench loader`` measures reads over a real HTTP server, and the tests check the same transport
against the same server; both need the same temp config (every nginx temp path inside the run's folder, a port
chosen on 127.0.0.1, the workers running as the caller so they can read 0700 temp folders). Debian's nginx comes
from ``.ci/install-servers.sh``; without it :func:`loopback_nginx` yields None and the caller skips.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

START_TIMEOUT_S = 30.0
NGINX_CONF = """daemon off;
worker_processes 1;
{user}
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log {access_log};
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port};
        root {www};
    }}
}}
"""


def nginx_binary() -> str | None:
    """nginx on PATH or in Debian's sbin folders (not on a non-root PATH)."""
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")


def nginx_user_line() -> str:
    """As root, nginx workers would run as ``nobody`` and could not read 0700 temp folders: run them as us."""
    if os.geteuid() != 0:
        return ""
    import grp
    import pwd

    return f"user {pwd.getpwuid(os.geteuid()).pw_name} {grp.getgrgid(os.getegid()).gr_name};"


def free_port() -> int:
    """A free loopback port (it may be taken again before the server binds it: callers retry)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = START_TIMEOUT_S) -> None:
    """Return once ``127.0.0.1:port`` accepts connections; RuntimeError (with the log's tail) if the server exits
    or does not listen within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {log.read_text(errors='replace')[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"server did not listen on 127.0.0.1:{port} within {timeout} s")


def stop(proc: subprocess.Popen) -> None:
    """Stop a server by its own handle, killing it if it does not exit in time."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@contextlib.contextmanager
def loopback_nginx(www: Path, d: Path, *, access_log: bool = False, attempts: int = 3) -> Iterator[str | None]:
    """Serve ``www`` on 127.0.0.1 with its config, logs and temp files in ``d``; yield the base URL (None when nginx
    is not installed) and stop the server on exit. ``access_log`` writes ``d/access.log`` (tests count requests);
    a port taken between choosing and binding is chosen again, up to ``attempts`` times."""
    binary = nginx_binary()
    if binary is None:
        yield None
        return
    d.mkdir(parents=True, exist_ok=True)
    log_line = str(d / "access.log") if access_log else "off"
    for attempt in range(attempts):
        port = free_port()
        conf = d / "nginx.conf"
        conf.write_text(NGINX_CONF.format(user=nginx_user_line(), d=d, port=port, www=www, access_log=log_line))
        with (d / "stdout.log").open("wb") as out:
            proc = subprocess.Popen([binary, "-p", str(d), "-c", str(conf), "-e", str(d / "error.log")],
                                    stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
        try:
            wait_for_port(port, proc, d / "error.log")
            break
        except RuntimeError:
            stop(proc)
            if attempt == attempts - 1:
                raise
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)


__all__ = ["NGINX_CONF", "START_TIMEOUT_S", "loopback_nginx", "nginx_binary", "nginx_user_line", "stop",
           "wait_for_port"]  # fmt: skip
