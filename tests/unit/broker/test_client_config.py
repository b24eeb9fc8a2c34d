"""The client properties file: the Java client's names and librdkafka's give the same connection, and what
Puente cannot honour is refused by name, never ignored and never quoted with a secret."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from confluent_kafka import KafkaError as RdKafkaError
from confluent_kafka import KafkaException
from cryptography.hazmat.primitives import serialization
from pydantic import ValidationError

from broker.kafka import KafkaConnection, admin, connection_from_properties, translate
from puente.dev import pki
from puente.errors import ConfigError, KafkaUnavailableError

SECRET = "pa$s=w0rd:9f3e"  # '=' and ':' after the first separator are the value's; no backslash (refused)


def _write(folder: Path, text: str, name: str = "client.properties") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)  # it may hold a password: as `puente users apply` writes it
    return path


@pytest.fixture
def ca(tmp_path: Path) -> Path:
    return pki.ensure_ca(tmp_path / "tls")[0]


def test_java_and_librdkafka_names_describe_the_same_connection(tmp_path: Path, ca: Path) -> None:
    java = _write(tmp_path, (
        "# as Kafka's console tools take it\n"
        "bootstrap.servers=k1:9093,k2:9093\nsecurity.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-512\n"
        "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required \\\n"
        f'    username="partner-COL" password="{SECRET}";\n'
        f"ssl.truststore.type=PEM\nssl.truststore.location={ca}\n"), "java.properties")
    rdkafka = _write(tmp_path, (
        "bootstrap.servers=k1:9093,k2:9093\nsecurity.protocol=SASL_SSL\nsasl.mechanisms=SCRAM-SHA-512\n"
        f"sasl.username=partner-COL\nsasl.password={SECRET}\nssl.ca.location={ca}\n"), "rdkafka.properties")
    one, other = connection_from_properties(java), connection_from_properties(rdkafka)
    for conn in (one, other):
        assert (conn.bootstrap, conn.security_protocol, conn.sasl_mechanism, conn.username, conn.ca_file) == (
            "k1:9093,k2:9093", "SASL_SSL", "SCRAM-SHA-512", "partner-COL", ca)
        assert conn.password is not None and conn.password.get_secret_value() == SECRET
        assert SECRET not in repr(conn) and conn.principal == "User:partner-COL"
        kw = conn.aiokafka()
        assert (kw["security_protocol"], kw["sasl_mechanism"], kw["sasl_plain_username"],
                kw["sasl_plain_password"]) == ("SASL_SSL", "SCRAM-SHA-512", "partner-COL", SECRET)
        assert kw["ssl_context"] is not None and kw["ssl_context"].check_hostname
        lib = conn.librdkafka()
        assert (lib["sasl.username"], lib["sasl.password"], lib["ssl.ca.location"]) == ("partner-COL", SECRET, str(ca))


def test_a_pem_keystore_gives_mutual_tls_and_relative_paths_follow_the_file(tmp_path: Path, ca: Path) -> None:
    pki.issue(tmp_path / "tls", "client", ["localhost"], common="partner-USA")
    config = _write(tmp_path / "tls", "bootstrap.servers=k1:9093\nsecurity.protocol=SSL\n"
                                      "ssl.keystore.type=PEM\nssl.keystore.location=client.pem\n"
                                      "ssl.truststore.type=PEM\nssl.truststore.location=ca.pem\n")
    conn = connection_from_properties(config)
    assert conn.cert_file == conn.key_file == tmp_path / "tls" / "client.pem"
    assert conn.ca_file == ca
    assert conn.ssl_context() is not None  # the key and chain load from the one file
    assert conn.librdkafka()["ssl.certificate.location"] == str(tmp_path / "tls" / "client.pem")


@pytest.mark.parametrize(("text", "named"), [
    ("ssl.keystore.key=-----BEGIN PRIVATE KEY-----", "ssl.keystore.key"),
    ("ssl.keystore.certificate.chain=-----BEGIN CERTIFICATE-----", "ssl.keystore.certificate.chain"),
    ("ssl.truststore.certificates=-----BEGIN CERTIFICATE-----", "ssl.truststore.certificates"),
    ("ssl.keystore.type=PKCS12", "ssl.keystore.type"),
    ("ssl.truststore.type=JKS", "ssl.truststore.type"),
    ("sasl.mechanism=GSSAPI", ":2: sasl.mechanism"),
    ("security.protocol=SSL_PLAIN", ":2: security.protocol"),
    ("sasl.jaas.confg=x", ":2: the key is not a client setting Puente knows (did you mean sasl.jaas.config?)"),
    # misspelt: refused with its line and the name meant, never ignored (and never quoted: it may be a secret)
    ("ssl.endpoint.identification.algorithm=https\nssl.endpoint.identification.algorithm=", "given twice"),
])
def test_what_puente_cannot_honour_is_refused_by_name(tmp_path: Path, text: str, named: str) -> None:
    config = _write(tmp_path, f"bootstrap.servers=k1:9093\n{text}\n")
    with pytest.raises(ConfigError) as caught:
        connection_from_properties(config)
    assert named in str(caught.value) and str(config) in str(caught.value)
    assert "BEGIN" not in str(caught.value)  # PEM text is never quoted back


@pytest.mark.parametrize(("text", "advice"), [
    ("security.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-512\nsasl.username=u\n", "username and password"),
    (f"security.protocol=SSL\nsasl.username=u\nsasl.password={SECRET}\n", "set SASL_SSL"),
    ("security.protocol=PLAINTEXT\nssl.ca.location=/etc/hostname\n", "TLS files are set"),
    ("security.protocol=SSL\nssl.certificate.location=/etc/hostname\n", "go together"),
    ("security.protocol=SSL\nssl.ca.location=/nowhere/ca.pem\n", "does not exist"),
    ('sasl.jaas.config=com.example.Other required username="u";', "ScramLoginModule"),
    ("sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
     'username="u" password="p" serviceName="x";', "serviceName"),
])
def test_combinations_that_cannot_work_name_what_to_fix_and_never_the_password(
        tmp_path: Path, text: str, advice: str) -> None:
    config = _write(tmp_path, f"bootstrap.servers=k1:9093\n{text}\n")
    with pytest.raises(ConfigError) as caught:
        connection_from_properties(config)
    assert advice in str(caught.value) and SECRET not in str(caught.value)


@pytest.mark.parametrize("servers", ["localhost:9092", "127.0.0.1:9092,[::1]:9092", "k1:9093",
                                     "127.0.0.1:9093,10.0.0.5:9093"])
@pytest.mark.parametrize(("protocol", "mechanism"), [("SASL_PLAINTEXT", "SCRAM-SHA-512"),
                                                     ("SASL_PLAINTEXT", "PLAIN"), ("sasl_plaintext", "SCRAM-SHA-256")])
def test_sasl_plaintext_is_refused_whatever_the_host(tmp_path: Path, servers: str, protocol: str,
                                                      mechanism: str) -> None:
    """SASL_PLAINTEXT is refused for a Kafka on this host as for any other, in one line naming the file, the line and
    what to set: the login and every record would go in clear to the hosts the cluster advertises, which no client
    library lets Puente check before it connects."""
    config = _write(tmp_path, f"bootstrap.servers={servers}\nsecurity.protocol={protocol}\nsasl.mechanism={mechanism}\n"
                              f"sasl.username=partner-COL\nsasl.password={SECRET}\n")
    with pytest.raises(ConfigError) as caught:
        connection_from_properties(config)
    message = str(caught.value)
    assert message.startswith(f"{config}:2: security.protocol: SASL_PLAINTEXT sends the login and every record in "
                              "clear and authenticates no server: use SASL_SSL")
    assert "ssl.truststore.location" in message and "\n" not in message and SECRET not in message


def test_no_connection_holds_sasl_plaintext() -> None:
    """A KafkaConnection made in code, not from a file, cannot hold SASL_PLAINTEXT either: no client is made with it."""
    with pytest.raises(ValidationError, match="SASL_PLAINTEXT sends the login"):
        KafkaConnection(bootstrap="127.0.0.1:9092", security_protocol="SASL_PLAINTEXT",
                        sasl_mechanism="SCRAM-SHA-512", username="partner-COL", password="x")


def test_a_file_must_say_how_it_is_secured_and_say_it_once(tmp_path: Path, ca: Path) -> None:
    """A file without security.protocol would reach whoever answers at that address in clear and unauthenticated
    (the client's default): refused, as are a SASL mechanism without SASL, the server's name left unchecked
    against the system's CAs (any certificate the system trusts, for any name, would pass), and one setting given
    under two spellings (the Java client and librdkafka would each read another)."""
    login = ("sasl.mechanism=SCRAM-SHA-512\nsasl.username=partner-COL\nsasl.password=x\n"
             f"ssl.truststore.location={ca}\n")
    cases = [
        ("bootstrap.servers=k1:9093\n", "no security.protocol"),
        ("bootstrap.servers=k1:9093\nsasl.mechanism=SCRAM-SHA-512\n", "no security.protocol"),
        ("bootstrap.servers=k1:9093\nsecurity.protocol=PLAINTEXT\nsasl.mechanism=SCRAM-SHA-512\n",
         "a SASL mechanism, username or password is set"),
        ("bootstrap.servers=k1:9093\nsecurity.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-512\nsasl.username=u\n"
         "sasl.password=p\nssl.endpoint.identification.algorithm=\n", "the server's name is not checked"),
        ("bootstrap.servers=k1:9093\nsecurity.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-512\nsasl.username=u\n"
         "sasl.password=p\nssl.endpoint.identification.algorithm=http\n", "names no algorithm Kafka knows"),
        (f"bootstrap.servers=k1:9093\nsecurity.protocol=SASL_SSL\n{login}ssl.ca.location=/etc/ssl/certs/x.pem\n",
         "ssl.truststore.location and ssl.ca.location set the same thing"),
        (f"bootstrap.servers=k1:9093\nsecurity.protocol=SASL_SSL\n{login}sasl.mechanisms=PLAIN\n",
         "sasl.mechanism and sasl.mechanisms set the same thing"),
        (f"bootstrap.servers=k1:9093\nsecurity.protocol=SASL_SSL\n{login}sasl.jaas.config=org.apache.kafka.common."
         'security.scram.ScramLoginModule required username="partner-USA" password="y";\n',
         "sasl.username and sasl.jaas.config set the same thing"),
    ]
    scram = "sasl.mechanism=SCRAM-SHA-512\nsasl.username=u\nsasl.password=p\n"
    system = ssl.get_default_verify_paths()
    bundle = system.cafile or system.openssl_cafile
    copied = tmp_path / "our-ca.pem"  # the system's bundle under another name is that bundle all the same
    copied.write_bytes(Path(str(bundle)).read_bytes())
    one = tmp_path / "one-root.pem"  # and any one CA of it
    text = Path(str(bundle)).read_text("ascii", "replace")
    one.write_text(text[text.index("-----BEGIN CERTIFICATE-----"):text.index("-----END CERTIFICATE-----") + 25] + "\n")
    cases += [
        # The name unchecked: any certificate the CA signed passes for Kafka, another party's client certificate
        # from a deployment's own CA too; its holder relays a SCRAM login or takes a PLAIN password. Refused,
        # whatever the CA, the mechanism or whether a password is sent at all.
        (f"bootstrap.servers=k1:9093\nsecurity.protocol=SASL_SSL\n{login}ssl.endpoint.identification.algorithm=\n",
         "the server's name is not checked"),
        (f"bootstrap.servers=k1:9093\nsecurity.protocol=SASL_SSL\nsasl.mechanism=PLAIN\nsasl.username=u\n"
         f"sasl.password=p\nssl.truststore.location={ca}\nssl.endpoint.identification.algorithm=none\n",
         "the server's name is not checked"),
        (f"bootstrap.servers=k1:9093\nsecurity.protocol=SSL\nssl.truststore.location={ca}\n"
         "ssl.endpoint.identification.algorithm=\n", "the server's name is not checked"),
        # The names unchecked and the system's CAs trusted: any certificate they signed, for any name.
        (f"bootstrap.servers=k1:9093\nsecurity.protocol=SASL_SSL\n{scram}ssl.truststore.location={bundle}\n"
         "ssl.endpoint.identification.algorithm=\n", "the server's name is not checked"),
        (f"bootstrap.servers=k1:9093\nsecurity.protocol=SASL_SSL\n{scram}ssl.truststore.location={copied}\n"
         "ssl.endpoint.identification.algorithm=\n", "the server's name is not checked"),
        (f"bootstrap.servers=k1:9093\nsecurity.protocol=SASL_SSL\n{scram}ssl.truststore.location={one}\n"
         "ssl.endpoint.identification.algorithm=\n", "the server's name is not checked"),
        # The last of two would win: another login than the one a reader of the file sees first.
        ("bootstrap.servers=k1:9093\nsecurity.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-512\nsasl.jaas.config="
         'org.apache.kafka.common.security.scram.ScramLoginModule required username="agency-SENAN" password="a" '
         f'username="broker" password="b";\nssl.truststore.location={ca}\n', "option username is given twice"),
    ]
    for text, named in cases:
        with pytest.raises(ConfigError) as caught:
            connection_from_properties(_write(tmp_path, text))
        assert named in str(caught.value), (text, str(caught.value))
    for algorithm in ("https", "HTTPS"):
        checked = f"bootstrap.servers=k1:9093\nsecurity.protocol=SASL_SSL\n{login}" \
                  f"ssl.endpoint.identification.algorithm={algorithm}\n"
        assert connection_from_properties(_write(tmp_path, checked)).check_hostname


def _mtls(tmp_path: Path, extra: str = "") -> Path:
    pki.issue(tmp_path / "tls", "client", ["localhost"], common="partner-USA")
    return _write(tmp_path / "tls", "bootstrap.servers=k1:9093\nsecurity.protocol=SSL\n"
                                    "ssl.keystore.type=PEM\nssl.keystore.location=client.pem\n"
                                    f"ssl.truststore.type=PEM\nssl.truststore.location=ca.pem\n{extra}")


@pytest.mark.parametrize(("name", "mode", "named"), [
    ("client.pem", 0o644, "others may read or write it"),  # the client key is the login: a secret's checks
    ("client.pem", 0o640, "others may read or write it"),
    ("ca.pem", 0o666, "writable by others"),  # whoever may write the CA may answer as Kafka
    ("ca.pem", 0o664, "writable by others"),
])
def test_a_tls_file_others_may_read_or_rewrite_is_refused_by_its_setting(tmp_path: Path, name: str, mode: int,
                                                                         named: str) -> None:
    config = _mtls(tmp_path)
    (tmp_path / "tls" / name).chmod(mode)
    with pytest.raises(ConfigError) as caught:
        connection_from_properties(config)
    message = str(caught.value)
    assert named in message and ("ssl.keystore.location" in message or "ssl.truststore.location" in message)
    assert "BEGIN" not in message and "\n" not in message


def test_a_ca_in_a_folder_others_may_write_is_refused(tmp_path: Path, ca: Path) -> None:
    open_folder = tmp_path / "open"
    open_folder.mkdir()
    open_folder.chmod(0o777)
    (open_folder / "ca.pem").write_bytes(ca.read_bytes())
    config = _write(tmp_path, "bootstrap.servers=k1:9093\nsecurity.protocol=SSL\n"
                              f"ssl.ca.location={open_folder}/ca.pem\n")
    with pytest.raises(ConfigError, match=r"ssl\.truststore\.location or ssl\.ca\.location"):
        connection_from_properties(config)


def test_an_encrypted_client_key_without_its_password_is_refused_never_prompted(tmp_path: Path) -> None:
    """OpenSSL asks for an encrypted key's pass phrase on the terminal when it is given none: the connection gives
    it a callable that refuses instead, naming ssl.key.password; with the password it loads."""
    config = _mtls(tmp_path)
    pem = (tmp_path / "tls" / "client.pem").read_bytes()
    key = serialization.load_pem_private_key(pem, None)
    certs = pem[pem.index(b"-----BEGIN CERTIFICATE-----"):]
    encrypted = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.BestAvailableEncryption(b"k3y-pass"))
    (tmp_path / "tls" / "client.pem").write_bytes(encrypted + certs)
    with pytest.raises(ConfigError) as caught:
        connection_from_properties(config).ssl_context()
    assert "ssl.key.password" in str(caught.value) and str(config) in str(caught.value)
    config = _mtls(tmp_path / "again", "ssl.key.password=k3y-pass\n")
    (tmp_path / "again" / "tls" / "client.pem").write_bytes(encrypted + certs)
    assert connection_from_properties(config).ssl_context() is not None


def test_the_admin_client_refuses_a_configuration_in_one_line_without_its_values(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The admin commands (`topics`, `users`, `acls`) start librdkafka's client: a wrong ssl.key.password is refused
    by the same check as every client's, and a setting librdkafka refuses as it starts is a ConfigError naming what
    to check and librdkafka's code, never its text (which may quote a value: a password)."""
    config = _mtls(tmp_path, "ssl.key.password=wrong\n")
    pem = (tmp_path / "tls" / "client.pem").read_bytes()
    key = serialization.load_pem_private_key(pem, None)
    certs = pem[pem.index(b"-----BEGIN CERTIFICATE-----"):]
    (tmp_path / "tls" / "client.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"right")) + certs)
    with pytest.raises(ConfigError) as caught:
        admin.Admin(connection_from_properties(config))
    assert "TLS files cannot be used" in str(caught.value) and "wrong" not in str(caught.value)

    def refusing(config: dict[str, object]) -> None:
        raise KafkaException(RdKafkaError(RdKafkaError._INVALID_ARG, f"Invalid value {SECRET!r} for sasl.password"))

    monkeypatch.setattr(admin, "AdminClient", refusing)
    login = _write(tmp_path, f"bootstrap.servers=k1:9093\nsecurity.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-512\n"
                             f"sasl.username=u\nsasl.password={SECRET}\n")
    with pytest.raises(ConfigError) as caught:
        admin.Admin(connection_from_properties(login))
    message = str(caught.value)
    assert "_INVALID_ARG" in message and str(login) in message and SECRET not in message and "\n" not in message


@pytest.mark.parametrize("servers", ["host:notaport", "k1:99999", "k1", ":9093", "k1:9093,", "k1:9093,,k2:9093",
                                     "k1:0", "::1:9093", "k1:9093 k2:9093", "k_1:-1"])
def test_bootstrap_servers_must_be_host_and_port_entries(tmp_path: Path, servers: str) -> None:
    """A malformed bootstrap.servers is a setting to fix (exit 3, its line named), not Kafka unavailable nor the
    client library's ValueError; the value is never quoted."""
    config = _write(tmp_path, f"bootstrap.servers={servers}\nsecurity.protocol=PLAINTEXT\n")
    with pytest.raises(ConfigError) as caught:
        connection_from_properties(config)
    message = str(caught.value)
    assert f"{config}:1: bootstrap.servers" in message and "host:port" in message and servers not in message
    assert "Value error" not in message  # the validator's words, not pydantic's


def test_bootstrap_servers_take_names_addresses_and_bracketed_ipv6(tmp_path: Path) -> None:
    servers = "kafka-1:9093,10.0.0.7:9093,[::1]:19092,kafka_2.internal.example:65535"
    config = _write(tmp_path, f"bootstrap.servers={servers}\nsecurity.protocol=PLAINTEXT\n")
    assert connection_from_properties(config).bootstrap == servers


def test_a_line_ending_in_a_backslash_continues_as_java_reads_it(tmp_path: Path, ca: Path) -> None:
    """Kafka's Java tools continue a line ending in a backslash, so the line after is part of its value: read as a
    setting of its own, it turned the server's name check off for Puente while the Java tools kept it on."""
    config = _write(tmp_path, (
        "bootstrap.servers=k1:9093\nsecurity.protocol=SSL\n"
        f"ssl.truststore.type=PEM\nssl.truststore.location={ca}\n"
        "client.id=col-subscriber\\\n"
        "ssl.endpoint.identification.algorithm=none\n"))
    conn = connection_from_properties(config)
    assert conn.check_hostname and conn.aiokafka()["ssl_context"].check_hostname
    assert conn.librdkafka().get("ssl.endpoint.identification.algorithm", "https") == "https"


@pytest.mark.parametrize("ending", ["\\\\", "\\\\\\\\", "\\ ", "\\\\\\", "\\\\\\\\\\"])
def test_a_value_holding_a_backslash_escape_is_refused_naming_its_line(tmp_path: Path, ca: Path,
                                                                        ending: str) -> None:
    """Two backslashes are one escaped backslash to the Java tools, one before a blank escapes the blank, and three
    or five end in an escaped one before the continuation: Puente read each backslash as itself, so the value was
    not the one the Java tools read. Refused, as the writer refuses it (``unsafe_value``), naming the line."""
    config = _write(tmp_path, (
        "bootstrap.servers=k1:9093\nsecurity.protocol=SSL\n"
        f"ssl.truststore.type=PEM\nssl.truststore.location={ca}\n"
        f"client.id=col-subscriber{ending}\n"
        "ssl.endpoint.identification.algorithm=none\n"))
    with pytest.raises(ConfigError, match=r":5: the value of client\.id .*backslash"):
        connection_from_properties(config)


def test_puente_bootstrap_and_a_files_servers_that_differ_are_refused_naming_both(tmp_path: Path) -> None:
    """PUENTE_BOOTSTRAP naming other servers than the file's bootstrap.servers is one line naming both sources (and
    neither value), never one of them silently used: a command meant for one Kafka ran against the other."""
    config = _write(tmp_path, "security.protocol=PLAINTEXT\nbootstrap.servers=k1:9093,k2:9093\n")
    with pytest.raises(ConfigError) as caught:
        connection_from_properties(config, bootstrap="prod-kafka.example:9093")
    message = str(caught.value)
    assert message.startswith("PUENTE_BOOTSTRAP and bootstrap.servers in ") and f"{config} (line 2)" in message
    assert "prod-kafka" not in message and "k1:9093" not in message and "\n" not in message
    with pytest.raises(ConfigError, match="name different servers"):  # one server more is another set
        connection_from_properties(config, bootstrap="k1:9093,k2:9093,k3:9093")
    same = connection_from_properties(config, bootstrap=" K2:9093 ,k1:9093")  # the same set: order, case, spaces
    assert same.bootstrap == "k1:9093,k2:9093"


class _NoClient:
    def poll(self, timeout: float) -> int:
        return 0


@pytest.mark.parametrize(("text", "bootstrap", "named"), [
    ("bootstrap.servers=k1:9093\n", None, "check bootstrap.servers in {config} and"),
    ("bootstrap.servers=k1:9093\n", "k1:9093", "check bootstrap.servers in {config} and"),
    ("", "k1:9093", "check PUENTE_BOOTSTRAP (filling in for {config}, which names no bootstrap.servers) and"),
])
def test_an_unreachable_kafka_names_where_its_servers_came_from(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, bootstrap: str | None, named: str) -> None:
    """Kafka not reached is one line naming the one place its servers came from (the file's bootstrap.servers, or
    PUENTE_BOOTSTRAP filling in for a file naming none), from the admin client and the others alike."""
    config = _write(tmp_path, f"security.protocol=PLAINTEXT\n{text}")
    conn = connection_from_properties(config, bootstrap=bootstrap)
    monkeypatch.setattr(admin, "AdminClient", lambda config: _NoClient())
    errors = [admin.Admin(conn).error(KafkaException(RdKafkaError(RdKafkaError._TRANSPORT, "down")), "listing"),
              translate(TimeoutError(), conn, "listing")]
    for error in errors:
        assert isinstance(error, KafkaUnavailableError) and named.format(config=config) in str(error), error
        assert "PUENTE_BOOTSTRAP (or" not in str(error)


@pytest.mark.parametrize(("line", "said"), [
    ("sasl.password=pa\\\\ss\\u0041\\=x", ":5: the value of sasl.password would not be read"),  # Java: pa\ssA=x
    ("sasl.username=b\u00f6b", ":4: the value of sasl.username would not be read"),  # ISO-8859-1 to Java
    ("ssl.truststore.location=/run/ca\\u002epem", ":5: the value of ssl.truststore.location would not be read"),
    ("sasl\\.username=bob", ":4: the key holds a backslash"),
])
def test_a_key_or_value_java_would_read_otherwise_is_refused_naming_the_line_never_the_value(
        tmp_path: Path, line: str, said: str) -> None:
    """Java's Properties decodes escapes in keys and values (\\\\, \\=, \\uXXXX) and reads the file as ISO-8859-1,
    where Puente took escapes as written and the text as UTF-8: a file Puente and Kafka's tools read as two
    logins, paths or passwords. Refused instead, as the writer refuses them (``unsafe_value``): the line named, the
    value never quoted."""
    head = "bootstrap.servers=k1:9093\nsecurity.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-512\n"
    text = head + (f"{line}\nsasl.password=x\n" if "username" in line else f"sasl.username=u\n{line}\n")
    with pytest.raises(ConfigError) as caught:
        connection_from_properties(_write(tmp_path, text))
    message = str(caught.value)
    assert said in message, message
    assert "pa\\" not in message and "bob" not in message and "u0041" not in message and "/run" not in message


def test_a_values_trailing_blanks_are_dropped_as_the_java_client_drops_them(tmp_path: Path, ca: Path) -> None:
    """Properties keeps a value's trailing spaces and tabs, but the Java client's ConfigDef trims every string,
    password and list value: Kafka reads such a file as if they were not there, and so does Puente. It refused
    them (1ff16a6), so a stray blank on one line of a party's file made `users apply` take the file as unusable."""
    jaas = ('org.apache.kafka.common.security.scram.ScramLoginModule required '
            'username="partner-COL" password="s3cret-value";')
    config = _write(tmp_path, ("bootstrap.servers=k1:9093 , k2:9093 \t\n"
                               "security.protocol=SASL_SSL  \nsasl.mechanism=SCRAM-SHA-512\t\n"
                               f"sasl.jaas.config={jaas[:40]}\\\n    {jaas[40:]} \n"
                               f"ssl.truststore.type=PEM \nssl.truststore.location={ca}\t \n"
                               "client.id=col \\\n   \n"))  # continued onto blanks alone: "col " as Java trims it
    conn = connection_from_properties(config, bootstrap="k2:9093,k1:9093")
    assert conn.security_protocol == "SASL_SSL" and conn.sasl_mechanism == "SCRAM-SHA-512" and conn.ca_file == ca
    assert conn.username == "partner-COL" and conn.password is not None
    assert conn.password.get_secret_value() == "s3cret-value" and conn.client_id == "col"


def test_a_value_with_blanks_alone_is_empty_as_java_reads_it(tmp_path: Path) -> None:
    """Blanks after '=' and nothing else: Java skips them as the space before the value, which is empty."""
    config = _write(tmp_path, "bootstrap.servers=k1:9093\nsecurity.protocol=PLAINTEXT\nclient.id=   \n")
    assert connection_from_properties(config).bootstrap == "k1:9093"
