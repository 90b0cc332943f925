"""Secrets never leave the process: what is redacted, and where.

A configuration may carry credentials in three shapes, and each is caught
wherever it would be written down (the manifest's ``config`` and ``input``,
``report.html``, MLflow parameters and tags, every log line and traceback):

- a value under a secret-looking key, in any section and at any depth
  (:func:`is_secret_key`: the key's words include ``secret``, ``password``,
  ``token``, ``credential``, ``key``, ...; ``spark.hadoop.fs.s3a.secret.key``,
  ``fs.azure.account.key.ACCOUNT``, ``spark.ssl.keyStorePassword``), and every
  value of ``input.storage_options`` (fsspec options are credentials more
  often than not);
- the user information of a URI (``http://user:password@host``) and the
  values of secret-looking query parameters (``?sig=...``, ``&token=...``),
  in any string (:func:`scrub`);
- the secret values themselves, wherever else they show up (an error message
  quoting an option): :func:`remember` registers them for :func:`scrub`.
"""
from __future__ import annotations

import copy
import re

MASK = "***"
#: Words of a key name that mark its value as a secret.
SECRET_WORDS = frozenset({"secret", "secrets", "password", "passwd", "pwd", "passphrase",
                          "token", "tokens", "credential", "credentials", "key", "apikey",
                          "auth", "authorization", "signature", "sig", "sas", "cookie"})
#: Sections whose every value is redacted, whatever its key.
SECRET_SECTIONS = {("input", "storage_options"), ("output", "storage_options")}

_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<info>[^/@\s?#'\"]+)@")
_SECRET_QUERY = re.compile(
    r"(?P<name>[?&;](?:[^=&\s#]*?)(?:secret|password|passwd|token|credential|signature|sig|"
    r"key|auth|sas)[^=&\s#]*=)(?P<value>[^&\s#'\"]+)", re.IGNORECASE)

_remembered: set = set()


def is_secret_key(name) -> bool:
    """Does the key ``name`` hold a secret? (by its words, any case or separator)"""
    words = {w.lower() for w in _WORD.findall(str(name))}
    return bool(words & SECRET_WORDS)


def scrub(text):
    """``text`` without URI user information, secret query values or any value
    :func:`remember` was told of."""
    if not isinstance(text, str) or not text:
        return text
    text = _USERINFO.sub(lambda m: m.group("scheme") + MASK + "@", text)
    text = _SECRET_QUERY.sub(lambda m: m.group("name") + MASK, text)
    for value in _remembered:
        if value in text:
            text = text.replace(value, MASK)
    return text


def redact(value, *, secret=False):
    """A copy of ``value`` (a configuration or any part of it) safe to write down:
    values under secret-looking keys replaced by ``***``, strings scrubbed."""
    if isinstance(value, dict):
        return {k: (MASK if (secret or is_secret_key(k)) and v not in (None, "", {}, [])
                    and not isinstance(v, dict) else redact(v, secret=secret or
                                                            is_secret_key(k)))
                for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, secret=secret) for v in value]
    if secret and value not in (None, ""):
        return MASK
    return scrub(value) if isinstance(value, str) else copy.deepcopy(value)


def redact_config(config: dict) -> dict:
    """The configuration as it may be written down (manifest, report, MLflow)."""
    out = {}
    for section, values in config.items():
        if not isinstance(values, dict):
            out[section] = redact(values)
            continue
        out[section] = {key: redact(value, secret=(section, key) in SECRET_SECTIONS)
                        for key, value in values.items()}
    return out


def remember(config: dict):
    """Register the secret values of ``config`` so that :func:`scrub` hides them
    wherever they turn up (log lines, error messages, tracebacks)."""
    def walk(value, secret):
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, secret or is_secret_key(k))
        elif isinstance(value, list):
            for v in value:
                walk(v, secret)
        elif isinstance(value, str):
            if secret and len(value) >= 4:
                _remembered.add(value)
            for match in _USERINFO.finditer(value):
                info = match.group("info")
                password = info.split(":", 1)[1] if ":" in info else ""
                if len(password) >= 4:
                    _remembered.add(password)

    for section, values in config.items():
        if isinstance(values, dict):
            for key, value in values.items():
                walk(value, (section, key) in SECRET_SECTIONS or is_secret_key(key))
