"""Serve the dashboard with werkzeug: in a background thread, or blocking for the CLI."""

from __future__ import annotations

import ipaddress
import logging
import threading
from types import TracebackType

from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

from dashboard.api import close_streams, open_streams

logger = logging.getLogger(__name__)

STOP_TIMEOUT_S = 5.0


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _warn_if_exposed(app: Flask, host: str) -> None:
    app.config["BIND_HOST"] = host  # off loopback, reset and purge need the admin token
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback and not app.config.get("ALLOWED_HOSTS"):
        logger.warning(
            "listening on %s: browsers must use a loopback name or this address; set "
            "ONLOOKER_ALLOWED_HOSTS to the names they use (any other Host is refused)",
            host,
        )
    if not loopback:
        logger.warning(
            "listening on %s: anyone on the network can watch the dashboard; reset and purge "
            "need the admin token%s",
            host,
            ""
            if app.config.get("ADMIN_TOKEN")
            else " and stay off until ONLOOKER_ADMIN_TOKEN is set",
        )


class DashboardServer:
    """The dashboard app on a werkzeug server in a daemon thread (port 0 picks a free port)."""

    def __init__(self, app: Flask, host: str = "127.0.0.1", port: int = 8000):
        self.app = app
        self.host = host
        self.port = port
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:8000``; the real port once started."""
        return _url(self.host, self.port)

    def start(self) -> DashboardServer:
        """Bind and serve in the background; return self."""
        if self._server is not None:
            return self
        _warn_if_exposed(self.app, self.host)
        open_streams(self.app)
        self._server = make_server(self.host, self.port, self.app, threaded=True)
        self.port = self._server.server_port
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"onlooker-dashboard-{self.port}",
            daemon=True,
        )
        self._thread.start()
        logger.info("dashboard at %s", self.url)
        return self

    def stop(self) -> None:
        """Stop serving, end open event streams, disconnect MQTT; safe to call more than once."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        close_streams(self.app)
        server.shutdown()
        if thread is not None:
            thread.join(STOP_TIMEOUT_S)
        server.server_close()
        _stop_subscriber(self.app)

    def __enter__(self) -> DashboardServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def run(app: Flask, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve until Ctrl-C, then end streams and disconnect the MQTT subscriber."""
    _warn_if_exposed(app, host)
    open_streams(app)
    server = make_server(host, port, app, threaded=True)
    logger.info("dashboard at %s", _url(host, server.server_port))
    try:
        server.serve_forever()  # returns on KeyboardInterrupt and closes the socket
    finally:
        close_streams(app)
        server.server_close()
        _stop_subscriber(app)


def _stop_subscriber(app: Flask) -> None:
    subscriber = app.extensions.get("onlooker_mqtt")
    if subscriber is not None:
        subscriber.stop()
