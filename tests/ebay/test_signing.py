"""Digital Signatures (RFC 9421 / RFC 9530) against eBay's published test keys and sample signature.

The keys, the JWEs and the sample request/signature below are copied from the README of eBay's repository
eBay/digital-signature-verification-ebay-api (sections "Key Information" and "Testing a Signature"); eBay
says they are public *test* keys, the same as the IETF RFC 9421 sample keys.  See FACTS.md §12.
"""

from __future__ import annotations

import base64

import pytest

from sync_core.ebay import signing
from sync_core.ebay.redact import redact

ED25519_PRIVATE = """-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF
-----END PRIVATE KEY-----"""
ED25519_PUBLIC = """-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAJrQLj5P/89iXES9+vFgrIy29clF9CC/oPPsw3c5D0bs=
-----END PUBLIC KEY-----"""
ED25519_JWE = (
    "eyJ6aXAiOiJERUYiLCJlbmMiOiJBMjU2R0NNIiwidGFnIjoiSXh2dVRMb0FLS0hlS0Zoa3BxQ05CUSIsImFsZyI6IkEyNTZHQ01LVyIsIml2Ijoia"
    "Fd3YjNoczk2QzEyOTNucCJ9.2o02pR9SoTF4g_5qRXZm6tF4H52TarilIAKxoVUqjd8.3qaF0KJN-rFHHm_P.AMUAe9PPduew09mANIZ-O_68CCuv6"
    "EIx096rm9WyLZnYz5N1WFDQ3jP0RBkbaOtQZHImMSPXIHVaB96RWshLuJsUgCKmTAwkPVCZv3zhLxZVxMXtPUuJ-ppVmPIv0NzznWCOU5Kvb9Xux7"
    "ZtnlvLXgwOFEix-BaWNomUAazbsrUCbrp514GIea3butbyxXLNi6R9TJUNh8V2uan-optT1MMyS7eMQnVGL5rYBULk.9K5ucUqAu0DqkkhgubsHHw")
RSA_PRIVATE = """-----BEGIN PRIVATE KEY-----
MIIEvgIBADALBgkqhkiG9w0BAQoEggSqMIIEpgIBAAKCAQEAr4tmm3r20Wd/Pbqv
P1s2+QEtvpuRaV8Yq40gjUR8y2Rjxa6dpG2GXHbPfvMs8ct+Lh1GH45x28Rw3Ry5
3mm+oAXjyQ86OnDkZ5N8lYbggD4O3w6M6pAvLkhk95AndTrifbIFPNU8PPMO7Oyr
FAHqgDsznjPFmTOtCEcN2Z1FpWgchwuYLPL+Wokqltd11nqqzi+bJ9cvSKADYdUA
AN5WUtzdpiy6LbTgSxP7ociU4Tn0g5I6aDZJ7A8Lzo0KSyZYoA485mqcO0GVAdVw
9lq4aOT9v6d+nb4bnNkQVklLQ3fVAvJm+xdDOp9LCNCN48V2pnDOkFV6+U9nV5oy
c6XI2wIDAQABAoIBAQCUB8ip+kJiiZVKF8AqfB/aUP0jTAqOQewK1kKJ/iQCXBCq
pbo360gvdt05H5VZ/RDVkEgO2k73VSsbulqezKs8RFs2tEmU+JgTI9MeQJPWcP6X
aKy6LIYs0E2cWgp8GADgoBs8llBq0UhX0KffglIeek3n7Z6Gt4YFge2TAcW2WbN4
XfK7lupFyo6HHyWRiYHMMARQXLJeOSdTn5aMBP0PO4bQyk5ORxTUSeOciPJUFktQ
HkvGbym7KryEfwH8Tks0L7WhzyP60PL3xS9FNOJi9m+zztwYIXGDQuKM2GDsITeD
2mI2oHoPMyAD0wdI7BwSVW18p1h+jgfc4dlexKYRAoGBAOVfuiEiOchGghV5vn5N
RDNscAFnpHj1QgMr6/UG05RTgmcLfVsI1I4bSkbrIuVKviGGf7atlkROALOG/xRx
DLadgBEeNyHL5lz6ihQaFJLVQ0u3U4SB67J0YtVO3R6lXcIjBDHuY8SjYJ7Ci6Z6
vuDcoaEujnlrtUhaMxvSfcUJAoGBAMPsCHXte1uWNAqYad2WdLjPDlKtQJK1diCm
rqmB2g8QE99hDOHItjDBEdpyFBKOIP+NpVtM2KLhRajjcL9Ph8jrID6XUqikQuVi
4J9FV2m42jXMuioTT13idAILanYg8D3idvy/3isDVkON0X3UAVKrgMEne0hJpkPL
FYqgetvDAoGBAKLQ6JZMbSe0pPIJkSamQhsehgL5Rs51iX4m1z7+sYFAJfhvN3Q/
OGIHDRp6HjMUcxHpHw7U+S1TETxePwKLnLKj6hw8jnX2/nZRgWHzgVcY+sPsReRx
NJVf+Cfh6yOtznfX00p+JWOXdSY8glSSHJwRAMog+hFGW1AYdt7w80XBAoGBAImR
NUugqapgaEA8TrFxkJmngXYaAqpA0iYRA7kv3S4QavPBUGtFJHBNULzitydkNtVZ
3w6hgce0h9YThTo/nKc+OZDZbgfN9s7cQ75x0PQCAO4fx2P91Q+mDzDUVTeG30mE
t2m3S0dGe47JiJxifV9P3wNBNrZGSIF3mrORBVNDAoGBAI0QKn2Iv7Sgo4T/XjND
dl2kZTXqGAk8dOhpUiw/HdM3OGWbhHj2NdCzBliOmPyQtAr770GITWvbAI+IRYyF
S7Fnk6ZVVVHsxjtaHy1uJGFlaZzKR4AGNaUTOJMs6NadzCmGPAxNQQOCqoUjn4XR
rOjr9w349JooGXhOxbu8nOxX
-----END PRIVATE KEY-----"""
RSA_PUBLIC = """-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAr4tmm3r20Wd/PbqvP1s2
+QEtvpuRaV8Yq40gjUR8y2Rjxa6dpG2GXHbPfvMs8ct+Lh1GH45x28Rw3Ry53mm+
oAXjyQ86OnDkZ5N8lYbggD4O3w6M6pAvLkhk95AndTrifbIFPNU8PPMO7OyrFAHq
gDsznjPFmTOtCEcN2Z1FpWgchwuYLPL+Wokqltd11nqqzi+bJ9cvSKADYdUAAN5W
Utzdpiy6LbTgSxP7ociU4Tn0g5I6aDZJ7A8Lzo0KSyZYoA485mqcO0GVAdVw9lq4
aOT9v6d+nb4bnNkQVklLQ3fVAvJm+xdDOp9LCNCN48V2pnDOkFV6+U9nV5oyc6XI
2wIDAQAB
-----END PUBLIC KEY-----"""
RSA_JWE = (
    "eyJ6aXAiOiJERUYiLCJlbmMiOiJBMjU2R0NNIiwidGFnIjoiYVMxUlZybG9UdXdRaDBuRHZDOGJFZyIsImFsZyI6IkEyNTZHQ01LVyIsIml2Ij"
    "oiYVRwdE5ubGJqalJCR2dQQiJ9.6ZfgB6dRVjMqrney1nOlJpPm11tDziWFk2RuhwWrCyE.6lKneGYFN_148y3C.7Z0IMkg0e1dBFq4K5QmBoL"
    "i6V_cXTDF5rLyFss16j2IJMtdIknHHQn49tmSzjtM1gS04ueruCdBWixuPdzWOpJk-F6BkfslIDvP10WXesb0chGgPqROzWPzYJtZLJDDACFeq"
    "LBSRC5aevBYNZIBtbwoOZd9Q0JUAOhaLkeOmJEbnYoJyfDY-XLB9LgySNsE9GM2lo72NmAnjTxFal3Icnqd7pVhbhG5gFvPJbNzZJgNXDKOxV3"
    "qJ4kkM6RIdxfuoqXe-8VTVOCUee4P5Ce6bw7wTFrpsZIiaKVb10r4tp7mf90Y2VyxTWMGJVtslI44dA4s8kz8lM_b9GE2jx8MYNOOqt7bJt_AT"
    "f87LiwSQ56SPdz0bEpWwYn8gqifj9SjtCyx4EOYQIHFIqbS0oUn8T_TIpvsSgD3RNP2jlFvxZI-9fHOOjhCqQ2_dyAWPWkLPtHERfwPUy5FDR3"
    "naKlucjfOKXzuraIqyX8pcZQbkq7ESiyTxZU-trkcvEDquOpJLWElxACYKhCBns00oG-TcOEzrAIBwXZlBMdQR7rLM3QmT3K4a-Yu1VBQ2bl4."
    "FM42Am9AoxNanBs3cFCK0w")

# The README's "Testing a Signature" sample: POST http://localhost:8080/verifysignature, body {"hello": "world"}.
SAMPLE_URL = "http://localhost:8080/verifysignature"
SAMPLE_BODY = b'{"hello": "world"}'
SAMPLE_CREATED = 1658440308
SAMPLE_DIGEST = "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"
SAMPLE_INPUT = 'sig1=("content-digest" "x-ebay-signature-key" "@method" "@path" "@authority");created=1658440308'
SAMPLE_SIGNATURE = ("sig1=:ZMUpAejnqrt6POSx02ltx3cT9YODV2r+Cem/BKOagDSfztKOtCsjP/MxZqmY+FVJ3/8E4BL76T9Fjty8oJnsAw==:")


def test_content_digest_matches_the_guide():
    assert signing.content_digest(SAMPLE_BODY) == SAMPLE_DIGEST


def test_ed25519_signature_of_the_published_sample_is_byte_exact():
    """Ed25519 is deterministic: our headers for eBay's sample request equal the README's, byte for byte."""
    h = signing.Signer(ED25519_JWE, ED25519_PRIVATE).headers("POST", SAMPLE_URL, SAMPLE_BODY, created=SAMPLE_CREATED)
    assert h == {"x-ebay-signature-key": ED25519_JWE, "Content-Digest": SAMPLE_DIGEST,
                 "Signature-Input": SAMPLE_INPUT, "Signature": SAMPLE_SIGNATURE}
    pub = signing.load_public(ED25519_PUBLIC)
    assert signing.verify_request(pub, "POST", SAMPLE_URL, h, SAMPLE_BODY) is None


def test_signature_base_layout_without_body():
    base = signing.signature_base("GET", "https://apiz.ebay.com/sell/finances/v1/transaction?filter=x&limit=200",
                                  {"x-ebay-signature-key": "J"}, signing.COMPONENTS, 1683553831)
    assert base == ('"x-ebay-signature-key": J\n"@method": GET\n"@path": /sell/finances/v1/transaction\n'
                    '"@authority": apiz.ebay.com\n'
                    '"@signature-params": ("x-ebay-signature-key" "@method" "@path" "@authority");created=1683553831')


def test_get_without_body_signs_four_components_and_verifies_with_the_public_test_key():
    url = "https://apiz.ebay.com/sell/finances/v1/transaction?filter=transactionDate:%5B2026-01-01T00:00:00.000Z..%5D"
    h = signing.Signer(ED25519_JWE, ED25519_PRIVATE).headers("GET", url, None, created=1700000000)
    assert "Content-Digest" not in h
    assert h["Signature-Input"] == 'sig1=("x-ebay-signature-key" "@method" "@path" "@authority");created=1700000000'
    pub = signing.load_public(ED25519_PUBLIC)
    assert signing.verify_request(pub, "GET", url, h, None) is None
    # any change to a covered component breaks it
    assert signing.verify_request(pub, "GET", url.replace("transaction", "payout"), h, None) == "Signature invalid"
    assert signing.verify_request(pub, "POST", url, h, None) == "Signature invalid"
    assert signing.verify_request(pub, "GET", url.replace("apiz.ebay.com", "api.ebay.com"), h, None) == "Signature invalid"
    bad = dict(h, **{"x-ebay-signature-key": RSA_JWE})
    assert signing.verify_request(pub, "GET", url, bad, None) == "Signature invalid"
    assert signing.verify_request(pub, "GET", url, {}, None) is not None


def test_rsa_test_key_signs_pkcs1_sha256_and_verifies():
    signer = signing.Signer(RSA_JWE, RSA_PRIVATE)
    assert signer.cipher == "RSA"
    h = signer.headers("POST", SAMPLE_URL, SAMPLE_BODY, created=SAMPLE_CREATED)
    pub = signing.load_public(RSA_PUBLIC)
    assert signing.verify_request(pub, "POST", SAMPLE_URL, h, SAMPLE_BODY) is None
    assert signing.verify_request(pub, "POST", SAMPLE_URL, h, b'{"hello": "world!"}') == "Content-Digest missing or wrong"


def test_private_key_never_shows_in_repr_or_redacted_text():
    signer = signing.Signer(ED25519_JWE, ED25519_PRIVATE)
    body_line = ED25519_PRIVATE.splitlines()[1]
    assert body_line not in repr(signer)
    assert body_line not in redact(f"oops {ED25519_PRIVATE} and {body_line}")
    assert ED25519_JWE not in str(redact({"x-ebay-signature-key": ED25519_JWE}))


def test_bare_base64_private_key_as_create_signing_key_may_return_it():
    der_b64 = "".join(ED25519_PRIVATE.splitlines()[1:-1])
    h = signing.Signer(ED25519_JWE, der_b64).headers("POST", SAMPLE_URL, SAMPLE_BODY, created=SAMPLE_CREATED)
    assert h["Signature"] == SAMPLE_SIGNATURE
    assert base64.b64decode(der_b64)


@pytest.mark.parametrize("text", ["", "{", '{"privateKey": 1, "jwe": "a.b.c.d.e"}', "not a key",
                                  '{"privateKey": "AAAA", "jwe": "a.b.c.d.e"}',
                                  '{"privateKey": "%s", "jwe": "only.three.parts"}' % "x"])
def test_malformed_key_files_are_one_line_errors(text):
    with pytest.raises(signing.SigningKeyError) as ei:
        signing.parse_key_file(text)
    assert "\n" not in str(ei.value) and "MC4CAQ" not in str(ei.value)


def test_key_file_formats():
    pem = signing.parse_key_file(ED25519_PRIVATE + "\n" + ED25519_JWE + "\n")
    assert pem["jwe"] == ED25519_JWE and "BEGIN PRIVATE KEY" in pem["private_key"]
    import json
    js = signing.parse_key_file(json.dumps({"signingKeyId": "k1", "signingKeyCipher": "ED25519",
                                            "privateKey": "".join(ED25519_PRIVATE.splitlines()[1:-1]),
                                            "publicKey": "MCowBQYDK2VwAyEAJrQLj5P/89iXES9+vFgrIy29clF9CC/oPPsw3c5D0bs=",
                                            "jwe": ED25519_JWE}))
    assert js["key_id"] == "k1" and js["jwe"] == ED25519_JWE
