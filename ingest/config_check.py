"""Settings that weaken transport security, for ``oktaduck config check``.

Each is allowed (a test org on loopback, a lab receiver without TLS), so loading the config
accepts it; ``config check`` prints one warning per setting, naming the key, and fails with
``--strict``. What is looked at:

- ``sources[N].org_url`` with ``http://`` (only loopback is accepted): the API token is sent
  unencrypted; for a local test org only.
- ``sources[N].proxy`` / ``sinks[N].proxy`` with an ``http://`` proxy URL that holds a
  password: the password goes to the proxy in clear text.
- ``sinks[N].verify = false`` (http and syslog sinks): the server's certificate is not
  checked, so whoever sits in between can read the token and the events.
- ``sinks[N].allow_insecure = true``: plain ``http://`` to any host; named with the host when
  the URL uses it, and as a latent risk when it does not (yet).
- ``sinks[N].tls = false`` (syslog, the default) to a host that is not loopback: the events
  travel in clear text.
- ``api.listen`` on an address that is not loopback: the API has no TLS, so its token and
  every answer cross the network in clear text.
- a sink or API ``token_file`` readable by other users, and an http sink ``headers`` entry
  that carries a credential (``Authorization``, ``X-API-Key``, ...) written in the config file.
- ``storage.lake.catalog`` naming a PostgreSQL host beyond loopback without ``sslmode``
  ``require``, ``verify-ca`` or ``verify-full``: libpq's default (``prefer``) falls back to
  clear text, password and events included; ``storage.lake.s3.use_ssl = false`` to an endpoint
  beyond loopback (or AWS itself); a lake's ``password_file`` or S3 ``secret_file`` readable by
  other users.

``lake_secret_problems`` says which of a lake's secrets are missing or unreadable; nothing
here connects to the catalog or the storage.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from ingest.base.errors import OktaduckError
from ingest.base.secrets import secret_from_file
from ingest.config import Config
from ingest.export.sinks.http import credential_header
from ingest.okta.urls import is_loopback


def transport_warnings(config: Config) -> list[str]:
    """One line per setting of ``config`` that weakens transport security (``key: why``)."""
    warnings: list[str] = []
    for i, source in enumerate(config.sources):
        where = f"sources[{i}]"
        if source.org.scheme == "http":
            warnings.append(
                f"{where}.org_url: plain http:// to {source.org.host}: the API token is sent "
                "unencrypted (accepted for a loopback test org only; Okta itself is https://)"
            )
        if source.proxy is not None:
            warnings += _proxy_warning(f"{where}.proxy", source.proxy)
    for i, sink in enumerate(config.sinks):
        where = f"sinks[{i}]"
        options = sink.options
        if sink.kind in ("http", "syslog") and options.get("verify") is False:
            warnings.append(
                f"{where}.verify: false: the receiver's certificate is not checked, so "
                "whoever sits in between can read "
                + ("the token and the events" if sink.kind == "http" else "the events")
            )
        if sink.kind == "http":
            warnings += _http_sink(where, options)
        if sink.kind == "syslog":
            host = str(options.get("host", ""))
            if not options.get("tls", False) and not is_loopback(host):
                key = "tls" if "tls" in options else "tls (default false)"
                warnings.append(
                    f"{where}.{key}: events travel in clear text to {host}; set tls = true"
                )
        if sink.token_file is not None:
            warnings += _secret_file(f"{where}.token_file", sink.token_file)
    if config.api.enabled and not is_loopback(config.api.host):
        warnings.append(
            f"api.listen: {config.api.host} is not a loopback address and the API has no TLS: "
            "its token and every answer cross the network in clear text (put a TLS proxy in "
            "front, or listen on 127.0.0.1)"
        )
    if config.api.token_file is not None:
        warnings += _secret_file("api.token_file", config.api.token_file)
    return warnings + _lake_warnings(config)


# sslmode values with which libpq never sends anything in clear text
_PG_TLS = frozenset({"require", "verify-ca", "verify-full"})


def _lake_warnings(config: Config) -> list[str]:
    lake = config.storage.lake
    if lake is None:
        return []
    warnings: list[str] = []
    kind, _, rest = lake.catalog.partition(":")
    if kind == "postgres":
        keys = dict(pair.partition("=")[::2] for pair in rest.split())
        hosts = [
            h
            for key in ("host", "hostaddr")
            for h in keys.get(key, "").split(",")
            if h and not h.startswith("/")  # a folder is a Unix socket: this machine
        ]
        remote = [h for h in hosts if not is_loopback(h)]
        if remote and keys.get("sslmode") not in _PG_TLS:
            warnings.append(
                f"storage.lake.catalog: sslmode={keys.get('sslmode', 'prefer (the default)')} "
                f"to {remote[0]}: the catalog's password and the events' metadata may travel "
                "in clear text; add sslmode=verify-full (or require)"
            )
    if lake.s3 is not None and not lake.s3.use_ssl:
        endpoint = lake.s3.endpoint
        host = _endpoint_host(endpoint) if endpoint else "AWS S3"
        if not is_loopback(host):
            warnings.append(
                f"storage.lake.s3.use_ssl: false to {host}: the S3 keys' signatures and every "
                "event's data file travel in clear text"
            )
    if lake.password_file is not None:
        warnings += _secret_file("storage.lake.password_file", lake.password_file)
    if lake.s3 is not None and lake.s3.secret_file is not None:
        warnings += _secret_file("storage.lake.s3.secret_file", lake.s3.secret_file)
    return warnings


def _endpoint_host(endpoint: str) -> str:
    """``host``, ``host:port``, ``[v6]:port`` -> the host."""
    if endpoint.startswith("["):
        return endpoint[1:].partition("]")[0]
    return endpoint.rpartition(":")[0] if endpoint.count(":") == 1 else endpoint


def lake_secret_problems(config: Config) -> list[str]:
    """One line per secret of ``[storage] lake`` that is named but missing or unreadable."""
    lake = config.storage.lake
    if lake is None:
        return []
    problems: list[str] = []
    checks = [("storage.lake", lake.password)]
    if lake.s3 is not None:
        checks += [("storage.lake.s3", lake.s3.key_id), ("storage.lake.s3", lake.s3.secret)]
    for key, read in checks:
        try:
            read()
        except OktaduckError as err:
            problems.append(f"{key}: {err}")
    return problems


def _http_sink(where: str, options: dict[str, object]) -> list[str]:
    warnings: list[str] = []
    url = httpx.URL(str(options.get("url", "")))
    if options.get("allow_insecure"):
        if url.scheme == "http" and not is_loopback(url.host):
            warnings.append(
                f"{where}.allow_insecure: the token and the events travel in clear text to "
                f"{url.host}; use https://"
            )
        else:
            warnings.append(
                f"{where}.allow_insecure: true but unused by this url; remove it, or a later "
                "http:// url will send the token in clear text without a word"
            )
    proxy = options.get("proxy")
    if isinstance(proxy, str):
        warnings += _proxy_warning(f"{where}.proxy", proxy)
    headers = options.get("headers")
    for name in headers if isinstance(headers, dict) else ():
        if credential_header(name):
            warnings.append(
                f"{where}.headers.{name}: a credential written in the config file; put it in "
                "token_env or token_file (with token_header) instead"
            )
    return warnings


def _proxy_warning(key: str, proxy: str) -> list[str]:
    try:
        url = httpx.URL(proxy)
    except (httpx.InvalidURL, TypeError):
        return [f"{key}: not a URL"]
    if url.scheme == "http" and url.password:
        return [f"{key}: the proxy password travels in clear text to {url.host}"]
    return []


def _secret_file(key: str, path: Path) -> list[str]:
    found: list[str] = []
    try:
        secret_from_file(path, found)
    except OktaduckError:
        return []  # missing or empty: reported with the secrets
    return [f"{key}: {line}" for line in found]
