"""A client properties file's errors never quote its text: a secret on a line of its own, or in any position, stays
out of the message, which gives the line and names only settings Puente knows."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker.kafka import connection_from_properties
from puente.errors import ConfigError

MARK = "Zm9vYmFyU2VjcmV0UGFzc3dvcmQ"  # a base64 password: what a wrapped line carries
HEAD = "bootstrap.servers=k1:9093\nsecurity.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-512\nsasl.username=u\n"
JAAS = "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required"

CASES = [
    # a secret where a key is read
    f"{HEAD}sasl.password=\n  {MARK}=\n",  # wrapped onto its own line, ending in base64's '='
    f"{HEAD}sasl.password=\n{MARK}\n",  # with no separator at all
    f"{HEAD}{MARK}:tail\n",  # a ':' inside it
    f'{HEAD}sasl.password=x\n{MARK}-Tr0ub4dor:extra\n',
    f'{JAAS} username="u" password="x";\n{MARK}:extra\n',  # the rest of a JAAS value split without '\'
    f"{HEAD}sasl.password=x\n{MARK}=1\n{MARK}=2\n",  # and given twice
    f"{HEAD}=\\\n{MARK}\n",  # a continuation into it
    f"{HEAD}sasl.passwordX{MARK}=x\n",  # close to a known name
    f"{HEAD}Sasl.Password{MARK}=x\n",
    f"{HEAD}sasl.password={MARK}\\\n",  # the last line continued
    # a secret where a value is read
    f"bootstrap.servers=k1:9093\nsecurity.protocol={MARK}\n",
    f"bootstrap.servers=k1:9093\nsecurity.protocol=SASL_SSL\nsasl.mechanism={MARK}\n",
    f"bootstrap.servers=k1:9093\nsecurity.protocol=SSL\nsasl.password={MARK}\n",
    f"bootstrap.servers=k1:9093\nsecurity.protocol=SSL\nssl.truststore.type={MARK}\n",
    f"bootstrap.servers=k1:9093\nsecurity.protocol=SSL\nssl.keystore.type={MARK}\n",
    f"bootstrap.servers=k1:9093\nsecurity.protocol=SSL\nssl.truststore.location=/run/{MARK}.pem\n",
    f"bootstrap.servers=k1:9093\nsecurity.protocol=SSL\nssl.keystore.location={MARK}.pem\n",
    f"bootstrap.servers=k1:9093\nsecurity.protocol=SSL\nssl.keystore.key={MARK}\n",
    f"{HEAD}sasl.jaas.config={MARK}\n",
    f'{HEAD.replace("sasl.username=u", "")}{JAAS} username="u" password="{MARK}" {MARK}="x";\n',
    f'{HEAD.replace("sasl.username=u", "")}{JAAS} username="u" password="{MARK}" passwrd="{MARK}";\n',
    f'{HEAD}{JAAS} username="u" password="{MARK}";\n',  # two spellings of the login
    f"bootstrap.servers=\nsecurity.protocol=SSL\nssl.key.password={MARK}\n",
]


def _forms(mark: str) -> list[str]:
    """The marker and every 8-character piece of it, as it is and in lower case."""
    pieces = {mark[i:i + 8] for i in range(len(mark) - 7)}
    return sorted(pieces | {p.lower() for p in pieces})


@pytest.mark.parametrize("text", CASES, ids=[f"case{i}" for i in range(len(CASES))])
def test_no_properties_error_quotes_the_file(tmp_path: Path, text: str) -> None:
    """Whatever position a secret is in, the ConfigError names the file and no part of the secret."""
    config = tmp_path / "client.properties"
    config.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        connection_from_properties(config)
    message = str(caught.value)
    assert message.startswith(str(config))
    assert [form for form in _forms(MARK) if form in message] == [], message
    assert "Tr0ub4dor" not in message and "tail" not in message and "extra" not in message


@pytest.mark.parametrize(("text", "said"), [
    (f"{HEAD}sasl.password=\n  {MARK}=\n", ":6: the key is not a client setting Puente knows"),
    (f"{HEAD}sasl.pasword=x\n", ":5: the key is not a client setting Puente knows (did you mean sasl.password?)"),
    (f"{HEAD}SSL.Truststore.Location=x\n", "(did you mean ssl.truststore.location?)"),
    (f"{HEAD}sasl.password=x\n# a comment\nsasl.password=y\n", ":7: sasl.password is given twice (first at line 5)"),
    (f"{HEAD}sasl.password=x\nssl.truststore.type=JKS\n", ":6: ssl.truststore.type JKS is not supported"),
    (f"{HEAD}sasl.password=x\nssl.truststore.type=XYZ\n", ":6: ssl.truststore.type another type is not"),
    (f"{HEAD}sasl.password=x\nssl.truststore.type=\u00e9t\u00e9\n", ":6: the value of ssl.truststore.type would"),
    (f'{HEAD.replace("sasl.username=u", "")}{JAAS} \\\n  username="u" password="p" passwrd="q";\n',
     ":5: sasl.jaas.config: an option other than username and password (did you mean password?) is not "
     "supported"),
])
def test_a_properties_error_says_the_line_and_the_name_meant(tmp_path: Path, text: str, said: str) -> None:
    """The message stays actionable without quoting: the line, and a known name the key nearly matches."""
    config = tmp_path / "client.properties"
    config.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        connection_from_properties(config)
    assert said in str(caught.value), str(caught.value)
