"""The Kafka bus authenticates with SCRAM-SHA-512 over TLS, as production does (Strimzi).

A private single-node Kafka (the jars `scripts/kafka.sh` provisions) with two SCRAM listeners,
SASL_SSL (a throw-away CA signs its certificate for 127.0.0.1) and SASL_PLAINTEXT (dev), and
the users written into its metadata when the log dir is formatted (`--add-scram`). Without Java
or the jars the tests fail under CI=true and are skipped elsewhere.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import SecretStr

from services.runtime.bus.api import TopicSpec
from services.runtime.bus.factory import bus_from_settings
from services.runtime.settings import BusSettings
from tests._services import unavailable

REPO_ROOT = Path(__file__).resolve().parents[3]
USER, PASSWORD = "fjo-ingest", "9c1d2f0b7a4e4e21b3c5d6e7f8091a2b"

pytestmark = pytest.mark.timeout(240)


@dataclass(frozen=True)
class Broker:
    sasl_ssl: str
    sasl_plaintext: str
    ca: Path


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _pem(obj: x509.Certificate | ec.EllipticCurvePrivateKey) -> bytes:
    if isinstance(obj, x509.Certificate):
        return obj.public_bytes(serialization.Encoding.PEM)
    return obj.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _certificates(folder: Path) -> tuple[Path, Path]:
    """A CA (its certificate, for clients) and the broker's key + chain for 127.0.0.1."""
    now = dt.datetime.now(dt.UTC)

    def cert(subject: str, key: ec.EllipticCurvePrivateKey, issuer: str, signer, ca: bool):  # type: ignore[no-untyped-def]
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            san = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
        return builder.sign(signer, hashes.SHA256())

    ca_key, broker_key = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    ca = cert("fjo test CA", ca_key, "fjo test CA", ca_key, True)
    broker = cert("127.0.0.1", broker_key, "fjo test CA", ca_key, False)
    (folder / "ca.pem").write_bytes(_pem(ca))
    (folder / "broker.pem").write_bytes(_pem(broker_key) + _pem(broker) + _pem(ca))
    return folder / "ca.pem", folder / "broker.pem"


def _config(state: Path, plain: int, tls: int, controller: int, keystore: Path) -> Path:
    jaas = (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        'username="broker" password="broker-secret-0123456789";'
    )
    lines = [
        "process.roles=broker,controller",
        "node.id=1",
        f"controller.quorum.voters=1@127.0.0.1:{controller}",
        f"listeners=SASL_PLAINTEXT://127.0.0.1:{plain},SASL_SSL://127.0.0.1:{tls},"
        f"CONTROLLER://127.0.0.1:{controller}",
        f"advertised.listeners=SASL_PLAINTEXT://127.0.0.1:{plain},SASL_SSL://127.0.0.1:{tls}",
        "controller.listener.names=CONTROLLER",
        "inter.broker.listener.name=SASL_PLAINTEXT",
        "listener.security.protocol.map=CONTROLLER:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,"
        "SASL_SSL:SASL_SSL",
        "sasl.enabled.mechanisms=SCRAM-SHA-512",
        "sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512",
        f"listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config={jaas}",
        f"listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config={jaas}",
        "ssl.keystore.type=PEM",
        f"ssl.keystore.location={keystore}",
        f"log.dirs={state / 'data'}",
        "num.partitions=1",
        "offsets.topic.replication.factor=1",
        "offsets.topic.num.partitions=1",
        "transaction.state.log.replication.factor=1",
        "transaction.state.log.min.isr=1",
        "share.coordinator.state.topic.replication.factor=1",
        "share.coordinator.state.topic.min.isr=1",
        "group.initial.rebalance.delay.ms=0",
        "num.network.threads=1",
        "num.io.threads=2",
    ]
    path = state / "server.properties"
    path.write_text("\n".join(lines) + "\n")
    return path


def _libs() -> Path:
    if shutil.which("java") is None:
        unavailable("java is not installed (Java 17+ runs the private Kafka broker)")
    done = subprocess.run(
        [str(REPO_ROOT / "scripts" / "kafka.sh"), "provision"],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if done.returncode != 0:
        unavailable(f"scripts/kafka.sh provision failed:\n{done.stderr[-2000:]}")
    version = "4.4.0"
    for line in (REPO_ROOT / "scripts" / "kafka.sh").read_text().splitlines():
        if line.startswith('KAFKA_VERSION="${FJO_KAFKA_VERSION:-'):
            version = line.split(":-", 1)[1].split("}", 1)[0]
    cache = Path.home() / ".cache" / "fjo"
    return cache / f"kafka-{version}" / "libs"


def _bus_settings(bootstrap: str, **kw: object) -> BusSettings:
    return BusSettings.model_validate(
        {
            "backend": "kafka",
            "kafka_bootstrap": bootstrap,
            "kafka_sasl_mechanism": "SCRAM-SHA-512",
            "kafka_sasl_username": USER,
            "kafka_sasl_password": SecretStr(PASSWORD),
            **kw,
        }
    )


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    libs = _libs()
    state = tmp_path_factory.mktemp("kafka-sasl")
    ca, keystore = _certificates(state)
    plain, tls, controller = _free_ports(3)
    config = _config(state, plain, tls, controller, keystore)
    java = ["java", "-XX:-UsePerfData", "-Djava.awt.headless=true", "-cp", f"{libs}/*"]
    log = (state / "kafka.log").open("wb")
    cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    users = [
        f"SCRAM-SHA-512=[name={n},password={p}]"
        for n, p in (("broker", "broker-secret-0123456789"), (USER, PASSWORD))
    ]
    fmt = [
        *java,
        "-Xmx256m",
        "kafka.tools.StorageTool",
        "format",
        # One argument: a base64url id may start with "-", which argparse takes for an option.
        f"--cluster-id={cluster_id}",
        "-c",
        str(config),
    ]
    for user in users:
        fmt += ["--add-scram", user]
    done = subprocess.run(fmt, stdout=log, stderr=subprocess.STDOUT, timeout=120, check=False)
    if done.returncode != 0:
        log.close()
        unavailable(
            f"formatting the SCRAM broker failed: {(state / 'kafka.log').read_text()[-2000:]}"
        )
    process = subprocess.Popen(
        [*java, "-Xmx384m", "kafka.Kafka", str(config)], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                unavailable(
                    "the SCRAM broker did not start: "
                    + (state / "kafka.log").read_text(errors="replace")[-3000:]
                )
            try:
                with socket.create_connection(("127.0.0.1", tls), timeout=1):
                    break
            except OSError:
                time.sleep(0.3)
        yield Broker(f"127.0.0.1:{tls}", f"127.0.0.1:{plain}", ca)
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _round_trip(settings: BusSettings) -> None:
    topic = f"fjo.security-test.{uuid.uuid4().hex[:8]}.v1"
    bus = bus_from_settings(settings, session_timeout_ms=6000, heartbeat_interval_ms=2000)
    try:
        bus.create_topics([TopicSpec(topic, partitions=1)])
        producer = bus.producer()
        producer.publish(topic, b"hello over scram", key="k")
        producer.close()
        consumer = bus.consumer(f"group-{uuid.uuid4().hex[:8]}", [topic])
        try:
            got = []
            deadline = time.monotonic() + 60
            while not got and time.monotonic() < deadline:
                got = consumer.poll(max_records=10, timeout_s=1.0)
            assert [m.value for m in got] == [b"hello over scram"]
            consumer.commit(got)
        finally:
            consumer.close()
    finally:
        bus.close()


def test_the_bus_produces_and_consumes_over_sasl_ssl_with_scram_sha_512(broker: Broker) -> None:
    _round_trip(
        _bus_settings(
            broker.sasl_ssl, kafka_security_protocol="SASL_SSL", kafka_ssl_cafile=broker.ca
        )
    )


def test_the_bus_produces_and_consumes_over_sasl_plaintext_in_dev(broker: Broker) -> None:
    _round_trip(_bus_settings(broker.sasl_plaintext, kafka_security_protocol="SASL_PLAINTEXT"))


_TRY_TO_CONNECT = """
import json, sys
from services.runtime.bus.api import BusError
from services.runtime.bus.factory import bus_from_settings
from services.runtime.settings import BusSettings

bus = bus_from_settings(
    BusSettings.model_validate(json.load(sys.stdin)),
    producer_config={"bootstrap_timeout_ms": 5000},
)
try:
    bus.producer().close()
except BusError as exc:
    print(exc)
    sys.exit(3)
"""


def _refused(settings: BusSettings) -> None:
    """The broker does not let a client with these settings in. Tried in a child process:
    kafka-python leaves the sockets of a failed bootstrap unclosed (its bug, not the bus's),
    and this process would report them, whenever collected, against some later test."""
    values = settings.model_dump(mode="json")
    password = settings.kafka_sasl_password
    values["kafka_sasl_password"] = password.get_secret_value() if password else None
    done = subprocess.run(
        [sys.executable, "-c", _TRY_TO_CONNECT],
        input=json.dumps(values),
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=120,
        check=False,
    )
    assert done.returncode == 3, f"the broker let the client in:\n{done.stderr[-2000:]}"
    assert "cannot connect producer" in done.stdout


def test_a_wrong_password_is_refused_by_the_broker(broker: Broker) -> None:
    _refused(
        _bus_settings(
            broker.sasl_ssl,
            kafka_security_protocol="SASL_SSL",
            kafka_ssl_cafile=broker.ca,
            kafka_sasl_password=SecretStr("not-the-password-0123456789"),
        )
    )


def test_a_broker_certificate_from_another_ca_is_refused(broker: Broker, tmp_path: Path) -> None:
    other_ca, _ = _certificates(tmp_path)
    _refused(
        _bus_settings(
            broker.sasl_ssl, kafka_security_protocol="SASL_SSL", kafka_ssl_cafile=other_ca
        )
    )
