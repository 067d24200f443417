"""Minting throughput of the token library against raw cryptography signing, in one run.

    python benchmarks/bench_tokens.py [--seconds 1.0] [--rounds 7] [--bits 2048]

Each round times the library (Signer + mint: claims, JSON, base64url, signature) and the
ceiling (cryptography signing the same-size input with the same key object) back to back,
so machine noise hits both alike; the medians and their ratio are printed.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import jwt
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from okera_auth.module_utils import keys, tokens  # pip install -e . (scripts/setup-venv.sh does)


def rate(operation, seconds: float) -> float:
    count, start = 0, time.perf_counter()
    deadline = start + seconds
    while True:
        for _repeat in range(20):
            operation()
        count += 20
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="length of each timed run")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--bits", type=int, default=2048)
    arguments = parser.parse_args()

    private_key = rsa.generate_private_key(public_exponent=65537, key_size=arguments.bits)
    pem = private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    started = time.perf_counter()
    loaded = keys.load_private_key(pem)
    load_ms = (time.perf_counter() - started) * 1000

    signer = tokens.Signer(loaded, "RS512")
    spec = tokens.TokenSpec(subject="janedoe", ttl=86400)
    sample = signer.sign(tokens.build_claims(spec, int(time.time())))
    signing_input = sample.rsplit(".", 1)[0].encode()

    def library():
        tokens.mint(signer, spec)

    def ceiling():
        loaded.sign(signing_input, padding.PKCS1v15(), hashes.SHA512())

    def pyjwt_encode():
        jwt.encode({"sub": "janedoe", "exp": int(time.time()) + 86400}, loaded, "RS512")

    results = {"library": [], "ceiling": [], "pyjwt": []}
    for _round in range(arguments.rounds):
        results["ceiling"].append(rate(ceiling, arguments.seconds))
        results["library"].append(rate(library, arguments.seconds))
        results["pyjwt"].append(rate(pyjwt_encode, arguments.seconds / 2))
    median = {name: statistics.median(values) for name, values in results.items()}
    print("RS512, RSA-%d, 1 thread, %d rounds of %.1f s, cpu count %d"
          % (arguments.bits, arguments.rounds, arguments.seconds, os.cpu_count()))
    print("  key load (PEM parse + validation): %8.1f ms (once per key, never per token)" % load_ms)
    print("  ceiling: cryptography sign       : %8.0f signatures/s" % median["ceiling"])
    print("  okera_auth mint (jwt_token path) : %8.0f tokens/s" % median["library"])
    print("  PyJWT encode, for reference      : %8.0f tokens/s" % median["pyjwt"])
    print("  ratio library / ceiling          : %8.3f (goal >= 0.9)" % (median["library"] / median["ceiling"]))
    spread = max(results["library"]) / min(results["library"]) - 1
    print("  library spread across rounds     : %8.1f %%" % (spread * 100))


if __name__ == "__main__":
    main()
