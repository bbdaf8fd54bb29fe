"""A corpus of hostile bearer tokens, forged with an independent JOSE library (joserfc).

Every token here must be refused: alg confusion (``none``, HMAC keyed with the issuer's public
key, RSA/PSS/EdDSA/other curves signed by someone else's key under the real ``kid``), kid games,
huge and broken tokens, and tokens signed with the *real* key whose claims have the wrong type
or value (so that only claim validation stands between them and a principal). ``valid`` is the
one token that must pass, so that a verifier refusing everything cannot pass the test.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from joserfc import jws
from joserfc.jwk import ECKey, OKPKey, RSAKey, SecurityWarning

__all__ = ["Forgery", "TokenCorpus", "all_of"]

_MAX_LIFETIME_S = 12 * 3600  # services.runtime.auth's bound, restated: the test must not trust it


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


@dataclass(frozen=True)
class TokenCorpus:
    """Forges tokens against one issuer: its name, the audience, its real signing key."""

    issuer: str
    audience: str
    signing_key: ec.EllipticCurvePrivateKey
    kid: str
    subject: str = "intruder"
    roles: tuple[str, ...] = ()
    source: str | None = None

    def claims(self, **over: Any) -> dict[str, Any]:
        """Claims that would pass, with ``over`` replacing some."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": self.subject,
            "aud": self.audience,
            "iat": now,
            "nbf": now,
            "exp": now + 600,
            "roles": list(self.roles),
        }
        if self.source is not None:
            claims["fjo_source"] = self.source
        claims.update(over)
        return claims

    def _real(self) -> ECKey:
        pem = self.signing_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return ECKey.import_key(pem)

    def _public_pem(self) -> bytes:
        return self.signing_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign(self, payload: bytes, *, key: Any = None, alg: str = "ES256", **header: Any) -> str:
        """A compact JWS over ``payload`` bytes (not necessarily JSON) with joserfc."""
        protected = {"alg": alg, "kid": self.kid, **header}
        protected = {k: v for k, v in protected.items() if v is not _DROP}
        with warnings.catch_warnings():
            # joserfc warns that EdDSA is deprecated (RFC 9864): a forger does not care.
            warnings.simplefilter("ignore", SecurityWarning)
            return jws.serialize_compact(
                protected, payload, key if key is not None else self._real(), algorithms=[alg]
            )

    def sign_any_header(self, payload: bytes, header: Mapping[str, Any]) -> str:
        """ES256 by the real key under a header no JOSE library would write (a non-string
        kid, an unknown critical extension): by hand, with ``cryptography``."""
        signing_input = f"{_b64(_json(dict(header)))}.{_b64(payload)}"
        der = self.signing_key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return f"{signing_input}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    def hmac_token(self, payload: bytes, secret: bytes, alg: str) -> str:
        """An HS* token keyed with ``secret``: by hand, since joserfc (rightly) refuses a
        public key as an HMAC secret."""
        digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}
        signing_input = f"{_b64(_json({'alg': alg, 'kid': self.kid}))}.{_b64(payload)}"
        mac = hmac.new(secret, signing_input.encode(), digest[alg]).digest()
        return f"{signing_input}.{_b64(mac)}"

    def valid(self) -> str:
        """The control: a token that must be accepted."""
        return self.sign(_json(self.claims()))

    def forgeries(self) -> Iterator[Forgery]:
        yield from self._alg_confusion()
        yield from self._kid_games()
        yield from self._broken_and_huge()
        yield from self._wrong_claims()

    # -- alg confusion ------------------------------------------------------------------------
    def _alg_confusion(self) -> Iterator[Forgery]:
        body = _json(self.claims())
        head = {"typ": "JWT", "kid": self.kid}
        for alg in ("none", "None", "NONE", "nOnE", ""):
            unsigned = f"{_b64(_json({**head, 'alg': alg}))}.{_b64(body)}."
            yield Forgery(f"alg={alg!r} unsigned", unsigned)
            yield Forgery(f"alg={alg!r} with a junk signature", unsigned + "c2ln")
        pem = self._public_pem()
        jwk_json = json.dumps(self._real().as_dict(private=False)).encode()
        for alg in ("HS256", "HS384", "HS512"):
            for label, secret in (("public PEM", pem), ("public JWK", jwk_json), ("kid", b"")):
                yield Forgery(
                    f"{alg} keyed with the issuer's {label}",
                    self.hmac_token(body, secret or self.kid.encode(), alg),
                )
        rsa = RSAKey.generate_key(2048)
        for alg in ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512"):
            yield Forgery(
                f"{alg} by a foreign RSA key, real kid", self.sign(body, key=rsa, alg=alg)
            )
        ed25519 = OKPKey.generate_key("Ed25519")
        for alg in ("EdDSA", "Ed25519"):
            yield Forgery(
                f"{alg} by a foreign Ed25519 key, real kid", self.sign(body, key=ed25519, alg=alg)
            )
        yield Forgery(
            "ES256 by a foreign P-256 key, real kid",
            self.sign(body, key=ECKey.generate_key("P-256"), alg="ES256"),
        )
        yield Forgery(
            "ES384 by a P-384 key, real kid",
            self.sign(body, key=ECKey.generate_key("P-384"), alg="ES384"),
        )
        yield Forgery(
            "ES512 by a P-521 key, real kid",
            self.sign(body, key=ECKey.generate_key("P-521"), alg="ES512"),
        )
        foreign = ECKey.generate_key("P-256")
        for member, value in (
            ("jwk", foreign.as_dict(private=False)),
            ("jku", "https://evil.invalid/jwks.json"),
            ("x5u", "https://evil.invalid/cert.pem"),
        ):
            yield Forgery(
                f"foreign key announced in the {member} header",
                self.sign(body, key=foreign, **{member: value}),
            )
        for alg in (None, 256, ["ES256"], {"alg": "ES256"}, "es256", "ES256 ", "XS256"):
            raw = f"{_b64(_json({**head, 'alg': alg}))}.{_b64(body)}.c2ln"
            yield Forgery(f"alg={alg!r}", raw)
        yield Forgery("no alg at all", f"{_b64(_json(head))}.{_b64(body)}.c2ln")
        crit = {"alg": "ES256", "kid": self.kid, "crit": ["fjo-x"], "fjo-x": True}
        yield Forgery("unknown critical header extension", self.sign_any_header(body, crit))

    # -- kid games ----------------------------------------------------------------------------
    def _kid_games(self) -> Iterator[Forgery]:
        body = _json(self.claims())
        yield Forgery("no kid", self.sign(body, kid=_DROP))
        flipped = self.kid.upper() if self.kid.upper() != self.kid else self.kid.lower()
        for what, kid in (
            ("empty", ""),
            ("unknown", "unknown"),
            ("real + 'x'", self.kid + "x"),
            ("real, case flipped", flipped),
            ("path traversal", "../../../../etc/passwd"),
            ("device path", "/dev/null"),
            ("file URL", "file:///etc/shadow"),
            ("SQL", "' OR '1'='1"),
            ("NUL + real", "\u0000" + self.kid),
            ("real + NUL", self.kid + "\u0000"),
            ("100,000 chars", "K" * 100_000),
            ("5,000 non-ASCII chars", "é" * 5_000),
        ):
            yield Forgery(f"kid {what}", self.sign(body, kid=kid))
        for kid in (None, 0, 1.5, True, [self.kid], {"kid": self.kid}):
            raw = f"{_b64(_json({'alg': 'ES256', 'kid': kid}))}.{_b64(body)}.c2ln"
            yield Forgery(f"kid={kid!r} (not a string)", raw)
            yield Forgery(
                f"kid={kid!r} (not a string), really signed",
                self.sign_any_header(body, {"alg": "ES256", "kid": kid}),
            )

    # -- broken and huge tokens ---------------------------------------------------------------
    def _broken_and_huge(self) -> Iterator[Forgery]:
        body = _json(self.claims())
        good = self.valid()
        head, payload, signature = good.split(".")
        yield Forgery("empty", "")
        yield Forgery("one dot", ".")
        yield Forgery("two dots", "..")
        yield Forgery("four segments", f"{good}.{signature}")
        yield Forgery("header only", head)
        yield Forgery("not base64", "%%%.%%%.%%%")
        not_utf8 = _b64(bytes([0xFF, 0xFE]))
        yield Forgery("base64 of non-UTF-8", f"{not_utf8}.{payload}.{signature}")
        yield Forgery("header not JSON", f"{_b64(b'not json')}.{payload}.{signature}")
        yield Forgery("header a JSON array", f"{_b64(b'[1,2]')}.{payload}.{signature}")
        json_string = _b64(_json("ES256"))
        yield Forgery("header a JSON string", f"{json_string}.{payload}.{signature}")
        yield Forgery("signature of another token", f"{head}.{_b64(body + b' ')}.{signature}")
        yield Forgery("truncated signature", good[:-10])
        yield Forgery("1 MiB of garbage", "A" * (1 << 20))
        yield Forgery("1 MiB payload", f"{head}.{'A' * (1 << 20)}.{signature}")
        deep = b"[" * 100_000 + b"]" * 100_000
        yield Forgery("deeply nested header", f"{_b64(deep)}.{payload}.{signature}")
        yield Forgery("deeply nested payload, really signed", self.sign(deep))
        yield Forgery(
            "deeply nested claim, really signed",
            self.sign(b'{"sub":"x","nest":' + deep + b"}"),
        )
        yield Forgery(
            "100,000 roles, really signed",
            self.sign(_json(self.claims(roles=[f"r{i}" for i in range(100_000)]))),
        )
        yield Forgery(
            "a 200 KiB subject, really signed", self.sign(_json(self.claims(sub="s" * 200_000)))
        )
        for label, raw in (
            ("payload a JSON array", b"[1,2]"),
            ("payload a JSON string", b'"sub"'),
            ("payload null", b"null"),
            ("payload not JSON", b"sub=x"),
            ("payload empty", b""),
            ("payload with NaN exp", body.replace(b'"exp":', b'"exp":NaN,"x":')),
            ("payload with Infinity exp", body.replace(b'"exp":', b'"exp":Infinity,"x":')),
            ("payload with duplicate sub", body[:-1] + b',"sub":""}'),
        ):
            yield Forgery(f"{label}, really signed", self.sign(raw))

    # -- wrong types and values in every claim, signed with the real key ---------------------
    def _wrong_claims(self) -> Iterator[Forgery]:
        now = int(time.time())
        bad: Mapping[str, tuple[Any, ...]] = {
            "sub": (_DROP, "", " ", "\t\n", 123, 0, 1.5, True, None, [], ["a"], {"a": 1}),
            "aud": (
                _DROP,
                "",
                "fjo-other",
                123,
                None,
                True,
                [],
                [123],
                [None],
                {"a": 1},
                [self.audience.upper()],
            ),
            "iss": (
                _DROP,
                "",
                "https://evil.invalid",
                123,
                None,
                [self.issuer],
                {"iss": self.issuer},
                self.issuer + "/",
            ),
            "exp": (
                _DROP,
                "now",
                str(now + 600),
                None,
                True,
                [now + 600],
                {"t": 1},
                now - 3600,
                10**100,
                -(10**100),
                1e308,
                now + 10 * _MAX_LIFETIME_S,
            ),
            "iat": (
                _DROP,
                "now",
                str(now),
                None,
                True,
                False,
                [now],
                {"t": 1},
                now + 3600,
                10**100,
                -(10**100),
                1e308,
                0,
            ),
            "nbf": ("now", str(now), None, True, [now], {"t": 1}, now + 3600, 10**100, 1e308),
            "roles": (
                "admin",
                1,
                None,
                True,
                {"admin": True},
                [1],
                [None],
                [["admin"]],
                [{"r": "admin"}],
            ),
            "fjo_source": (1, True, ["cafcass-cymru"], {"s": "cafcass-cymru"}, ""),
        }
        for claim, values in bad.items():
            for value in values:
                claims = self.claims()
                if value is _DROP:
                    claims.pop(claim, None)
                    label = f"{claim} missing"
                else:
                    claims[claim] = value
                    label = f"{claim}={_short(value)}"
                yield Forgery(f"{label}, really signed", self.sign(_json(claims)))
        lifetime = self.claims(iat=now - _MAX_LIFETIME_S - 60, exp=now + 60)
        yield Forgery("lifetime over the maximum, really signed", self.sign(_json(lifetime)))
        forever = self.claims(exp=now + 100 * 365 * 86400)
        yield Forgery("a century's lifetime, really signed", self.sign(_json(forever)))


class _Drop:
    def __repr__(self) -> str:
        return "<drop>"


_DROP: Any = _Drop()


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 30 else text[:27] + "..."


@dataclass(frozen=True)
class Forgery:
    """One hostile token and what it tries."""

    label: str
    token: str


def all_of(corpus: TokenCorpus) -> list[Forgery]:
    """Every forgery of the corpus (labels are unique, so a failure names its attack)."""
    forgeries = list(corpus.forgeries())
    labels = [f.label for f in forgeries]
    assert len(labels) == len(set(labels)), "forgery labels must be unique"
    return forgeries
