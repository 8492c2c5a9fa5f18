"""One way to reach ClickHouse for every component: an HTTP(S) server (the
embedded chDB server included) or in-process chDB for single-process tools."""

from __future__ import annotations

import logging
from urllib.parse import urlparse

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError

from pantau.config import ClickHouseConfig
from pantau.redact import redact_url

log = logging.getLogger("pantau.clickhouse")


class ClickHouseUnavailableError(RuntimeError):
    """ClickHouse could not be reached or refused the request."""


def connect(
    config: ClickHouseConfig, url: str, *, create_database: bool = False
) -> Client:
    """A clickhouse-connect client for ``url`` (http, https or chdb) using the
    configured user and database."""
    parsed = urlparse(url)
    try:
        if parsed.scheme == "chdb":
            client = clickhouse_connect.get_client(dsn=url)
        else:
            client = clickhouse_connect.get_client(
                host=parsed.hostname,
                port=parsed.port or (8443 if parsed.scheme == "https" else 8123),
                secure=parsed.scheme == "https",
                username=config.user,
                password=config.password.get_secret_value(),
                connect_timeout=config.connect_timeout_s,
                send_receive_timeout=config.send_receive_timeout_s,
                autogenerate_session_id=False,
            )
        if create_database:
            client.command(f"CREATE DATABASE IF NOT EXISTS {config.database}")
    except ClickHouseError as error:
        raise ClickHouseUnavailableError(
            f"cannot use ClickHouse at {redact_url(url)}: {error}"
        ) from error
    return client
