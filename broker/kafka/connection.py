"""How a Puente process reaches Kafka: one typed connection, read from the file operators already write.

A ``KafkaConnection`` holds the bootstrap servers and the security settings of one party (an
agency's adapter, the broker, a partner's subscriber, an auditor, the admin). It is built from a
client properties file in the Java client's property names, the same file an operator hands
Kafka's own console tools (``--command-config``)::

    bootstrap.servers=kafka-1:9093,kafka-2:9093
    security.protocol=SASL_SSL
    sasl.mechanism=SCRAM-SHA-512
    sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required \\
        username="col-subscriber" password="...";
    ssl.truststore.type=PEM
    ssl.truststore.location=/run/puente/ca.pem

The server's name is always checked: ``ssl.endpoint.identification.algorithm`` turned off is refused
(``KafkaConnection.check``), since any certificate the CA signed would then pass for Kafka.

``security.protocol=SASL_PLAINTEXT`` is refused, whatever the host: it sends the SCRAM exchange and every record
in clear and authenticates no server, and SCRAM as Kafka speaks it binds no channel, so a relay on the way signs
in as this party. A Kafka on this host is no exception: the bootstrap server only hands out the cluster's metadata,
and the client goes on, in clear, to the hosts Kafka advertises (``advertised.listeners``), which no client library
lets Puente check before it connects (librdkafka reaches them on its own threads). ``PLAINTEXT`` stays, for a
Kafka without security: it sends no login.

A client certificate for mutual TLS is ``ssl.keystore.type=PEM`` with ``ssl.keystore.location``
naming one PEM file that holds the private key and its certificate chain, as the Java client
reads it (``ssl.key.password`` if the key is encrypted). The Java client's inline forms
(``ssl.keystore.key``, ``ssl.keystore.certificate.chain``, ``ssl.truststore.certificates``: PEM
text in the property itself) are refused with that advice: Puente keeps keys in files only.
librdkafka's names are accepted where they differ (``sasl.username``, ``sasl.password``,
``ssl.ca.location``, ``ssl.certificate.location``, ``ssl.key.location``). The file is an
allow-list: a key Puente does not know is refused rather than ignored, so a misspelt security
setting can never silently leave a connection in clear. Secrets are ``SecretStr``: they never
print, and no error quotes them. Nor does an error quote any other text of the file: a password
wrapped onto a line of its own, or a JAAS value split without a ``\\``, reads as a key, so a
message gives the line number and names only settings Puente knows ("did you mean ...?").

The file is read as Kafka's Java tools read it, or refused: lines end at ``\n``, ``\r`` or ``\r\n``
only (``java.util.Properties``), and a line holding any other control, format or separator character
(U+2028, U+0085, a vertical tab, a form feed, ...) is refused, since Python's ``splitlines`` would end a
line there and Java would not: ``good:9093\u2028ssl.endpoint.identification.algorithm=none`` would turn
hostname checking off for Puente only. A key or value that ``java.util.Properties`` would decode otherwise is
refused too, naming its line: a backslash anywhere but a line's continuation (Java reads ``\\\\``, ``\\=`` and
``\\u0041`` as escapes), a character outside printable ASCII (Java reads the file as ISO-8859-1).
``unsafe_value`` is the rule, on the writer's side and here on the reader's, but for one thing: a value's
trailing spaces and tabs are dropped, as Kafka's Java client drops them. ``java.util.Properties`` keeps them,
but each Java client setting read here is one of the client's ``ConfigDef`` (a string, password or list), whose
parsing ``String.trim()``s the value (a list, each entry), so ``security.protocol=SASL_SSL `` is ``SASL_SSL`` to
the Java client as to Puente (leading blanks go too: ``Properties`` skips those after the ``=``); librdkafka's
names, which the Java client ignores, are read the same way. The writer still writes no such blank.

The file must be a regular file that others cannot write, in a folder others cannot write (whoever can may
point the party at their own servers or CA), reached through a link only when no one but this user or root
could have made or changed it (``broker.private_files.read_regular``). One holding a password passes every
check of a secret file (``broker.private_files``): this user's or root's, no permission for others.

Pure but for reading the properties file: no Kafka here (``broker.kafka.clients`` makes clients).
"""

from __future__ import annotations

import difflib
import os
import re
import ssl
import unicodedata
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from broker.private_files import folder_refusal, read_regular, secret_problem
from puente.errors import ConfigError
from puente.settings import PuenteSettings

Protocol = Literal["PLAINTEXT", "SSL", "SASL_SSL"]  # an allow-list: SASL_PLAINTEXT is refused (``_protocol``)
Mechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
_MAX_FILE = 64 * 1024
_MAX_TLS_FILE = 4 * 1024 * 1024  # a CA bundle (the system's is some 200 KiB), a certificate chain or a key


_SERVER = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,252}))"
                     r":(?P<port>[0-9]{1,5})")


class KafkaConnection(BaseModel):
    """One party's way into Kafka. ``timeout_s`` bounds how long reaching Kafka may take."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    bootstrap: str = Field(min_length=1)
    security_protocol: Protocol = "PLAINTEXT"
    sasl_mechanism: Mechanism | None = None
    username: str | None = None
    password: SecretStr | None = None
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    key_password: SecretStr | None = None
    check_hostname: bool = True
    client_id: str | None = None
    # librdkafka's floor for socket.timeout.ms (10 ms): below it the client refuses to start. The settings ask
    # for at least a second (``PuenteSettings.kafka_timeout_s``); tests go lower, never below this.
    timeout_s: float = Field(15.0, ge=0.01, le=600, allow_inf_nan=False)
    source: str = "settings"
    """Where this connection came from (a file name, or the settings), for error messages."""
    servers_from: str = "the bootstrap servers"
    """Where ``bootstrap`` came from (``bootstrap.servers in FILE``, or ``PUENTE_BOOTSTRAP`` filling in for a file
    naming none): what a person checks when Kafka cannot be reached."""

    @field_validator("bootstrap")
    @classmethod
    def _servers(cls, bootstrap: str) -> str:
        """``host:port`` entries, comma-separated (an IPv6 host in brackets), each port 1-65535: what the Java
        client and librdkafka both take. A malformed one was reported as Kafka unavailable, or as the client
        library's ValueError; it is a setting to fix. The message never quotes the value."""
        for number, entry in enumerate(bootstrap.split(","), 1):
            found = _SERVER.fullmatch(entry.strip())
            if found is None or not 1 <= int(found["port"]) <= 65535:
                raise ValueError(f"entry {number} is not host:port with a port from 1 to 65535 (servers are "
                                 "host:port,host:port; an IPv6 address goes in brackets: [::1]:19093)")
        return bootstrap

    @field_validator("security_protocol", mode="before")
    @classmethod
    def _protocol(cls, protocol: object) -> object:
        """SASL_PLAINTEXT is refused for every host, with what to set (the allow-list ``Protocol`` would refuse it
        too, but without saying why): no server is authenticated, the login and every record go in clear, and a
        Kafka on this host still sends the client on to the hosts it advertises, out of Puente's sight."""
        if isinstance(protocol, str) and protocol.strip().upper() == "SASL_PLAINTEXT":
            raise ValueError("SASL_PLAINTEXT sends the login and every record in clear and authenticates no "
                             "server: use SASL_SSL with the cluster's CA (ssl.truststore.location or "
                             "ssl.ca.location)")
        return protocol

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol.startswith("SASL")

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    @property
    def principal(self) -> str:
        """Who this connection authenticates as, for messages (never a secret)."""
        if self.uses_sasl and self.username:
            return f"User:{self.username}"
        if self.uses_tls and self.cert_file is not None:
            return f"the certificate in {self.cert_file}"
        return "an anonymous client"

    def check(self) -> KafkaConnection:
        """Refuse a combination that cannot work, naming the setting to fix."""
        where = self.source
        if self.uses_sasl and (self.sasl_mechanism is None or not self.username or self.password is None):
            raise ConfigError(f"{where}: security.protocol {self.security_protocol} needs sasl.mechanism and a "
                              "username and password (sasl.jaas.config, or sasl.username and sasl.password)")
        if not self.uses_sasl and (self.username or self.password is not None or self.sasl_mechanism):
            raise ConfigError(f"{where}: a SASL mechanism, username or password is set but security.protocol is "
                              f"{self.security_protocol}: set SASL_SSL")
        if self.uses_tls and not self.check_hostname:
            # Any certificate the CA signed, for any name, would then pass: another party's client certificate
            # from a deployment's own CA too. Its holder could pose as Kafka, read what this party sends (an
            # agency's alerts are clear text inside TLS), and relay a SCRAM login (Kafka binds none to the channel)
            # or take a PLAIN password outright. A CA of one's own narrows who, never to no one.
            raise ConfigError(f"{where}: ssl.endpoint.identification.algorithm is off, so the server's name is not "
                              "checked and any certificate the CA signed (another party's too) could pose as Kafka: "
                              "remove the setting, and give each server a certificate naming the host "
                              "bootstrap.servers gives")
        if (self.cert_file is None) != (self.key_file is None):
            raise ConfigError(f"{where}: a client certificate and its key go together (ssl.keystore.location, "
                              "or ssl.certificate.location and ssl.key.location)")
        if not self.uses_tls and (self.ca_file or self.cert_file):
            raise ConfigError(f"{where}: TLS files are set but security.protocol is {self.security_protocol}")
        for name, keys in (("ca_file", "ssl.truststore.location or ssl.ca.location"),
                           ("cert_file", "ssl.keystore.location or ssl.certificate.location"),
                           ("key_file", "ssl.keystore.location or ssl.key.location")):
            path = getattr(self, name)
            if path is not None:
                _check_tls_file(Path(path), where, name.replace("_", " "), keys, secret=name == "key_file")
        return self

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context for aiokafka: Puente's CA (or the system's), the client certificate if any."""
        if not self.uses_tls:
            return None
        try:
            context = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            context.check_hostname = self.check_hostname
            if self.cert_file is not None:
                password = self.key_password.get_secret_value() if self.key_password else _no_key_password
                # A callable, never None: OpenSSL would ask for an encrypted key's pass phrase on the terminal.
                context.load_cert_chain(str(self.cert_file), str(self.key_file), password)
        except ConfigError as exc:
            raise ConfigError(f"{self.source}: {exc}") from None
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"{self.source}: the TLS files cannot be used ({type(exc).__name__}: "
                              f"{getattr(exc, 'strerror', None) or exc.args[-1] if exc.args else exc}); "
                              "check ssl.truststore.location and the keystore files") from None
        return context

    def aiokafka(self) -> dict[str, Any]:
        """Keyword arguments for an aiokafka client."""
        out: dict[str, Any] = {"bootstrap_servers": self.bootstrap, "security_protocol": self.security_protocol,
                               "ssl_context": self.ssl_context()}
        if self.uses_sasl:
            out.update(sasl_mechanism=self.sasl_mechanism, sasl_plain_username=self.username,
                       sasl_plain_password=self.password.get_secret_value() if self.password else None)
        return out

    def librdkafka(self) -> dict[str, Any]:
        """The same connection in librdkafka's property names (confluent-kafka's admin client)."""
        out: dict[str, Any] = {"bootstrap.servers": self.bootstrap, "security.protocol": self.security_protocol}
        if self.uses_sasl:
            out.update({"sasl.mechanism": self.sasl_mechanism, "sasl.username": self.username,
                        "sasl.password": self.password.get_secret_value() if self.password else ""})
        if self.uses_tls:
            if self.ca_file:
                out["ssl.ca.location"] = str(self.ca_file)
            if self.cert_file:
                out["ssl.certificate.location"] = str(self.cert_file)
                out["ssl.key.location"] = str(self.key_file)
                if self.key_password:
                    out["ssl.key.password"] = self.key_password.get_secret_value()
            out["ssl.endpoint.identification.algorithm"] = "https" if self.check_hostname else "none"
        return out


# ---- the properties file -------------------------------------------------------------------------
# Java property -> field; librdkafka names map to the same fields.
_NAMES = {
    "bootstrap.servers": "bootstrap",
    "security.protocol": "security_protocol",
    "sasl.mechanism": "sasl_mechanism",
    "sasl.mechanisms": "sasl_mechanism",  # librdkafka's spelling
    "sasl.username": "username",
    "sasl.password": "password",
    "ssl.truststore.location": "ca_file",
    "ssl.ca.location": "ca_file",
    "ssl.certificate.location": "cert_file",
    "ssl.key.location": "key_file",
    "ssl.key.password": "key_password",
    "client.id": "client_id",
}
# Read and checked, but with nothing to set: PEM is the only store type Puente reads.
_PEM_ONLY = ("ssl.truststore.type", "ssl.keystore.type")
# The Java client's PEM-in-the-property forms: refused, with the file-based names to use instead.
_INLINE_PEM = ("ssl.keystore.key", "ssl.keystore.certificate.chain", "ssl.truststore.certificates")
# Handled by name rather than through _NAMES; with those, every key the file may hold.
_OTHER = ("sasl.jaas.config", "ssl.keystore.location", "ssl.endpoint.identification.algorithm")
_KNOWN = frozenset((*_NAMES, *_PEM_ONLY, *_INLINE_PEM, *_OTHER))
# Store types the Java client knows, so a refusal may name one (any other value is not quoted).
_STORE_TYPES = ("JKS", "PKCS12", "PEM", "BCFKS", "PKCS11")
# JAAS options of Kafka's login modules Puente does not use, so a refusal may name one.
_JAAS_OTHER = ("serviceName", "tokenauth", "useKeyTab", "storeKey", "keyTab", "principal")
_JAAS = re.compile(
    r"^\s*org\.apache\.kafka\.common\.security\.(?:scram\.ScramLoginModule|plain\.PlainLoginModule)\s+required"
    r"(?P<options>(?:\s+\w+\s*=\s*\"(?:[^\"\\]|\\.)*\")*)\s*;\s*$")
_PROPERTY = re.compile(r"^(?P<key>[^=:\s]+)\s*[=:]\s*(?P<value>.*)$")
_OPTION = re.compile(r"(\w+)\s*=\s*\"((?:[^\"\\]|\\.)*)\"")


# java.util.Properties ends a line at \n, \r or \r\n only, and its whitespace is space, tab and form feed.
_LINE_END = re.compile(r"\r\n|\r|\n")
_JAVA_SPACE = " \t"  # the form feed is refused with the other control characters


def _unsafe_char(text: str) -> str | None:
    """The Unicode category of the first character of ``text`` that Java and Python would not read alike
    (a control character other than tab, a format character, a line or paragraph separator, a space
    other than U+0020); None when there is none. Never the character itself: it may sit in a password."""
    for char in text:
        if char in (" ", "\t") or " " < char < "\x7f":
            continue
        category = unicodedata.category(char)
        if category in ("Cc", "Cf", "Zl", "Zp", "Zs", "Co", "Cs", "Cn"):
            return category
    return None


def unsafe_value(value: str) -> str | None:
    """Why ``value`` cannot be written as a property value that Kafka's Java tools and Puente both read back
    as written, in words fit for an error; None when it can. Never quotes ``value``.

    Refused rather than escaped: a control, format or separator character (a newline would start a setting
    of its own); a backslash (Java reads it as an escape, Puente as itself); whitespace at either end
    (Java drops the leading, Puente both); any character outside printable ASCII (Kafka's tools read the
    file as ISO-8859-1, Puente as UTF-8)."""
    if _unsafe_char(value) is not None or "\t" in value:
        return "it holds a control, format or line-separator character"
    if "\\" in value:
        return "it holds a backslash, which Kafka's Java tools would read as an escape"
    if value != value.strip(" "):
        return "it begins or ends with a space, which Kafka's Java tools and Puente would read differently"
    if not value.isascii():
        return "it holds a character outside printable ASCII, which Kafka's Java tools would read as ISO-8859-1"
    return None


class Entry(NamedTuple):
    """One setting of a properties file: its value and the line it starts on (for messages, which never quote)."""

    value: str
    line: int


def _did_you_mean(given: str, known: Iterable[str]) -> str:
    """' (did you mean x?)' with x the known name nearest to ``given``; '' when none is near. Never ``given``."""
    close = difflib.get_close_matches(given.strip().lower()[:80], sorted(known), 1, 0.75)
    return f" (did you mean {close[0]}?)" if close else ""


def _continues(line: str) -> bool:
    """Whether ``line`` goes on on the next line, as ``java.util.Properties`` reads it: it ends in an odd number of
    backslashes (an even number is that many halves of escaped backslashes), with nothing after them, not even a
    blank (a backslash before a blank escapes the blank)."""
    return (len(line) - len(line.rstrip("\\"))) % 2 == 1


def read_properties(text: str, source: str) -> dict[str, Entry]:
    """A client properties file's keys and values (``key=value`` or ``key: value``, ``#`` and ``!``
    comments, ``\\`` continuation lines), each with its line. Only the keys Puente knows are admitted,
    and a key given twice is refused: the last would silently win. Lines are split as
    ``java.util.Properties`` splits them, and a line holding another control or separator character
    is refused, as is a key holding a backslash and a value ``unsafe_value`` refuses once its trailing spaces
    and tabs are dropped (Kafka's client trims every value: module docstring): each value is the one the Java
    client reads, or none is returned.

    No message quotes the file: what reads as an unknown key may be a password wrapped onto a line
    of its own, or the rest of a JAAS value split without a ``\\``. It says the line and, for a
    near miss, the name meant."""
    out: dict[str, Entry] = {}
    logical, first = "", 0
    lines = _LINE_END.split(text)
    if lines and lines[-1] == "":
        lines.pop()  # the text after the last line end
    for number, line in enumerate(lines, 1):
        if _unsafe_char(line) is not None:  # the line is not quoted: it may hold a password
            raise ConfigError(f"{source}:{number}: the line holds a control, format or separator character; only "
                              "\\n, \\r and \\r\\n end a line (as Kafka's Java tools read the file): remove it")
        stripped = line.strip(_JAVA_SPACE)
        if not logical and (not stripped or stripped[0] in "#!"):
            continue
        if not logical:
            first = number
        if _continues(line):
            logical += stripped[:-1]
            continue
        logical += stripped
        # java.util.Properties keeps a value's trailing blanks, but every setting read here is one of Kafka's
        # ConfigDef (a string, password or list), which String.trim()s it: the client reads it without them.
        match = _PROPERTY.match(logical.rstrip(_JAVA_SPACE))
        logical = ""
        if match is None:
            raise ConfigError(f"{source}:{first}: expected key=value")
        key, value = match["key"], match["value"]
        if "\\" in key:
            raise ConfigError(f"{source}:{first}: the key holds a backslash, which Kafka's Java tools read as an "
                              "escape and Puente would not: write the key without one")
        if key not in _KNOWN:
            raise ConfigError(f"{source}:{first}: the key is not a client setting Puente knows"
                              f"{_did_you_mean(key, _KNOWN)}: check its spelling (Puente reads the Java client's "
                              "names and librdkafka's), or, if the line continues the one before, end that one "
                              "with '\\'")
        problem = unsafe_value(value)
        if problem is not None:  # the writer's rule (``unsafe_value``), so that a value is one both read alike
            raise ConfigError(f"{source}:{first}: the value of {key} would not be read as Kafka's Java tools read "
                              f"it: {problem}; change it")
        if key in out:
            raise ConfigError(f"{source}:{first}: {key} is given twice (first at line {out[key].line})")
        out[key] = Entry(value, first)
    if logical:
        raise ConfigError(f"{source}: the last line ends with a continuation '\\'")
    return out


def _jaas(entry: Entry, source: str) -> dict[str, str]:
    where = f"{source}:{entry.line}: sasl.jaas.config"
    match = _JAAS.match(entry.value)
    if match is None:
        raise ConfigError(f"{where} must be a ScramLoginModule or PlainLoginModule "
                          'entry: ... required username="..." password="...";')
    found = _OPTION.findall(match["options"])
    options = {k: v.replace('\\"', '"').replace("\\\\", "\\") for k, v in found}
    if len(options) != len(found):  # the last would win silently, as a property given twice would
        twice = next(k for k in options if sum(1 for name, _ in found if name == k) > 1)
        named = f"option {twice}" if twice in ("username", "password") else "an option"  # else: maybe a password
        raise ConfigError(f"{where}: {named} is given twice, and the last would silently win")
    unknown = sorted(set(options) - {"username", "password"})
    if unknown:  # named only when it is an option Kafka defines: otherwise it may be part of a password
        named = f"option {unknown[0]}" if unknown[0] in _JAAS_OTHER else \
            f"an option other than username and password{_did_you_mean(unknown[0], ('username', 'password'))}"
        raise ConfigError(f"{where}: {named} is not supported")
    return options


def _server_set(servers: str) -> frozenset[str]:
    """The servers of a ``host:port,host:port`` list as a set: order, spaces and the host's case aside."""
    return frozenset(entry.strip().lower() for entry in servers.split(",") if entry.strip())


def connection_from_properties(path: Path, *, bootstrap: str | None = None,
                               timeout_s: float = 15.0) -> KafkaConnection:
    """The connection a client properties file describes; ``bootstrap`` (``PUENTE_BOOTSTRAP``) fills in when the
    file has none. When both name servers they must be the same ones (as a set): two sources that disagree are
    refused, naming both, rather than one silently ignored (a command run with PUENTE_BOOTSTRAP naming the
    production Kafka went to the file's). Which one was used is kept (``servers_from``) for the error when
    Kafka cannot be reached."""
    source = str(path)
    try:
        raw, info = read_regular(path, _MAX_FILE, ConfigError)
    except OSError as exc:
        raise ConfigError(f"cannot read the client configuration {source}: {exc.strerror}") from None
    if len(raw) > _MAX_FILE:
        raise ConfigError(f"{source} is too large to be a client configuration")
    _check_not_swappable(path, info)
    try:
        props = read_properties(raw.decode("utf-8"), source)
    except UnicodeDecodeError:
        raise ConfigError(f"{source} is not UTF-8 text") from None
    fields: dict[str, Any] = {"source": source, "timeout_s": timeout_s}
    given: dict[str, str] = {}  # field -> the key that set it: two spellings of one setting are refused
    # Keys are known names only (read_properties refuses others), so a message may name them; never a value.
    for key, entry in props.items():
        targets = (("username", "password") if key == "sasl.jaas.config" else
                   ("cert_file", "key_file") if key == "ssl.keystore.location" else (_NAMES.get(key),))
        for target in targets:
            if target is not None and given.setdefault(target, key) != key:
                raise ConfigError(f"{source}:{entry.line}: {given[target]} and {key} set the same thing (lines "
                                  f"{props[given[target]].line} and {entry.line}); keep one (the Java client and "
                                  "librdkafka would each read another)")
    for key, entry in props.items():
        value = entry.value
        if key == "sasl.jaas.config":
            fields.update(_jaas(entry, source))
        elif key in _PEM_ONLY:
            if value.strip().upper() != "PEM":
                kind = value.strip().upper() if value.strip().upper() in _STORE_TYPES else "another type"
                raise ConfigError(f"{source}:{entry.line}: {key} {kind} is not supported; Puente reads PEM files")
        elif key == "ssl.keystore.location":  # one PEM file: the key and its certificate chain
            fields["cert_file"] = fields["key_file"] = value
        elif key in _INLINE_PEM:
            raise ConfigError(f"{source}:{entry.line}: {key} holds PEM text in the file itself; Puente reads keys and "
                              "certificates from files: use ssl.keystore.location (one PEM file with the key "
                              "and its chain) and ssl.truststore.location")
        elif key == "ssl.endpoint.identification.algorithm":
            algorithm = value.strip().lower()
            if algorithm not in ("https", "", "none"):  # Kafka knows https, and empty (none) for off
                raise ConfigError(f"{source}:{entry.line}: ssl.endpoint.identification.algorithm names no algorithm "
                                  "Kafka knows: leave it https, or remove it")
            fields["check_hostname"] = algorithm == "https"
        else:
            fields[_NAMES[key]] = value
    if "bootstrap" in fields:
        named = props[given["bootstrap"]]
        if bootstrap and _server_set(bootstrap) != _server_set(named.value):
            # Neither is quoted: the file's text is never quoted, and one line naming both says what to check.
            raise ConfigError(f"PUENTE_BOOTSTRAP and {given['bootstrap']} in {source} (line {named.line}) name "
                              "different servers: unset PUENTE_BOOTSTRAP, or make the two the same Kafka")
        fields["servers_from"] = f"{given['bootstrap']} in {source}"
    elif bootstrap:
        if unsafe_value(bootstrap) is not None:
            raise ConfigError(f"PUENTE_BOOTSTRAP cannot fill in for {source}: {unsafe_value(bootstrap)}; check it")
        fields["bootstrap"] = bootstrap
        fields["servers_from"] = f"PUENTE_BOOTSTRAP (filling in for {source}, which names no bootstrap.servers)"
    if "bootstrap" not in fields:
        raise ConfigError(f"{source}: no bootstrap.servers, and PUENTE_BOOTSTRAP is not set")
    base = path.parent
    for name in ("ca_file", "cert_file", "key_file"):
        if name in fields and not Path(fields[name]).is_absolute():
            fields[name] = base / fields[name]  # relative to the file, as operators keep them together
    try:
        conn = KafkaConnection(**fields)
    except ValidationError as exc:
        first = exc.errors()[0]  # its msg says what is expected, never the input (str(exc) would quote it)
        name = ".".join(str(p) for p in first["loc"])
        setting = given.get(name)
        where = f"{source}:{props[setting].line}: {setting}" if setting else f"{source}: {name}"
        raise ConfigError(f"{where}: {first['msg'].removeprefix('Value error, ')}") from None
    if "security_protocol" not in fields:
        # The client's default would be PLAINTEXT: in clear, unauthenticated, whoever answers at that address.
        raise ConfigError(f"{source}: no security.protocol: say SASL_SSL (security.protocol=PLAINTEXT only for a "
                          "Kafka without security)")
    conn.check()
    if conn.password is not None or conn.key_password is not None:
        problem = secret_problem(path, info)  # a password others may read is theirs too; one they may write, theirs
        if problem is not None:
            raise ConfigError(f"{source}: {problem}")
    return conn


def _no_key_password() -> str:
    """The pass phrase of an encrypted client key when the configuration gives none: a refusal naming the setting."""
    raise ConfigError("the client key is encrypted and no ssl.key.password is set: set it in the client "
                      "configuration, or use an unencrypted key file kept 0600")


def _check_tls_file(path: Path, where: str, what: str, keys: str, *, secret: bool) -> None:
    """Refuse a TLS file a client could not trust, naming the setting (never the path: it is the file's text, so
    no more than a setting's value may be quoted). Every one: a regular file of this user's or root's, reached
    only through links and folders no one else may change (``read_regular``), not writable by others nor in a
    folder others may write: whoever may write the CA may answer as Kafka and take the login that follows. The
    client key also passes the checks of a secret (``secret_problem``): it is the login itself."""
    try:
        _, info = read_regular(path, _MAX_TLS_FILE, ConfigError)
    except OSError:
        raise ConfigError(f"{where}: the {what} does not exist or cannot be read: check {keys} (a relative path is "
                          "taken from the client properties file's folder)") from None
    except ConfigError as exc:
        raise ConfigError(f"{where}: the {what} (set by {keys}) cannot be trusted: {exc}") from None
    if secret:
        problem = secret_problem(path, info)
    elif info.st_mode & 0o022:
        problem = f"writable by others (mode {info.st_mode & 0o777:04o}); run chmod go-w on it"
    else:
        problem = folder_refusal(path.parent)
    if problem is not None:
        raise ConfigError(f"{where}: the {what} (set by {keys}): {problem}")


def _check_not_swappable(path: Path, info: os.stat_result) -> None:
    """Refuse a client configuration others may write, or in a folder others may write: whoever can may point
    the party at servers or a CA of their own, or turn hostname checking off, even when it holds no password."""
    mode = info.st_mode & 0o777
    if mode & 0o022:
        raise ConfigError(f"{path}: the client configuration is writable by others (mode {mode:04o}); run chmod "
                          "600 on it")
    problem = folder_refusal(path.parent)
    if problem is not None:
        raise ConfigError(f"{path}: {problem}")


def connection(settings: PuenteSettings, name: str | None = None) -> KafkaConnection:
    """The connection the settings describe: ``PUENTE_CLIENT_CONFIG`` (a properties file) with
    ``PUENTE_BOOTSTRAP`` filling in (naming other servers than the file's, it is refused: see
    ``connection_from_properties``). ``PUENTE_BOOTSTRAP`` alone is refused: it would connect in
    clear and unauthenticated, so a forgotten client configuration would pass unseen wherever Kafka
    accepts that. A Kafka without security is reached only through a file that says so
    (``security.protocol=PLAINTEXT``)."""
    if settings.client_config is not None:
        conn = connection_from_properties(settings.client_config, bootstrap=settings.bootstrap,
                                          timeout_s=settings.kafka_timeout_s)
    elif settings.bootstrap:
        raise ConfigError("PUENTE_BOOTSTRAP alone would reach Kafka in clear and unauthenticated: set "
                          "PUENTE_CLIENT_CONFIG to this party's client.properties (`puente users apply` writes it); "
                          "a Kafka without security needs a file saying security.protocol=PLAINTEXT")
    else:
        raise ConfigError("no Kafka to connect to: set PUENTE_CLIENT_CONFIG (a client properties file with "
                          "bootstrap.servers and the party's login; PUENTE_BOOTSTRAP may fill in the servers)")
    return conn.model_copy(update={"client_id": name}) if name else conn
