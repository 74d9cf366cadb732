#!/usr/bin/env python3
"""An outside verifier for the Custos ledger, for the integration tests.

Written from the RFCs, sharing no code with the server:
  - Merkle tree hash, RFC 9162 2.1.1 (= RFC 6962 2.1): leaf = SHA-256(0x00 || d),
    node = SHA-256(0x01 || left || right), split at the largest power of two
    strictly smaller than n; the empty tree hashes to SHA-256("").
  - inclusion proof verification, RFC 9162 2.1.3.2;
  - consistency proof verification, RFC 9162 2.1.4.2;
  - C2SP signed notes carrying a tlog checkpoint (c2sp.org/signed-note,
    c2sp.org/tlog-checkpoint): key id = SHA-256(name || 0x0A || 0x01 || pub)[:4],
    Ed25519 over the note body. Python's standard library has no Ed25519, so
    the signature is checked by `openssl pkeyutl -verify -rawin`.

Subcommands (exit 0: valid, 1: invalid, 2: usage error):
  selftest                                  RFC 6962 vectors, every (m, n <= 8), mutations
  inclusion INDEX SIZE LEAFHEX ROOTHEX [PATHHEX...]
  consistency FIRST SECOND ROOT1HEX ROOT2HEX [PATHHEX...]
  checkpoint NOTEFILE PUBHEX                prints "ORIGIN SIZE ROOTHEX" when valid
  vkey VKEY NAME PUBHEX                     the note verifier key names NAME and PUB
  leaves                                    base64 leaf data on stdin, one per line:
                                            prints each leaf hash (hex)
  root                                      base64 leaf data on stdin, one per line:
                                            prints the tree hash of them all (hex)
"""
import base64
import hashlib
import os
import subprocess
import sys
import tempfile


def sha256(b):
    return hashlib.sha256(b).digest()


def leaf_hash(data):
    return sha256(b"\x00" + data)


def node_hash(left, right):
    return sha256(b"\x01" + left + right)


def split_point(n):
    """The largest power of two strictly smaller than n (n >= 2)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


# ---- the RFC recursions (used to compute roots and, in the self-test, to
# ---- build proofs that the verifiers below must accept) -----------------

def mth(leaves):
    """MTH over a list of leaf hashes (RFC 9162 2.1.1)."""
    n = len(leaves)
    if n == 0:
        return sha256(b"")
    if n == 1:
        return leaves[0]
    k = split_point(n)
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))


def path(m, leaves):
    """PATH(m, D[n]), RFC 9162 2.1.3.1."""
    n = len(leaves)
    if n == 1:
        return []
    k = split_point(n)
    if m < k:
        return path(m, leaves[:k]) + [mth(leaves[k:])]
    return path(m - k, leaves[k:]) + [mth(leaves[:k])]


def subproof(m, leaves, b):
    """SUBPROOF(m, D[n], b), RFC 9162 2.1.4.1."""
    n = len(leaves)
    if m == n:
        return [] if b else [mth(leaves)]
    k = split_point(n)
    if m <= k:
        return subproof(m, leaves[:k], b) + [mth(leaves[k:])]
    return subproof(m - k, leaves[k:], False) + [mth(leaves[:k])]


def proof(m, leaves):
    return subproof(m, leaves, True)


# ---- verification (RFC 9162 2.1.3.2 and 2.1.4.2) -------------------------

def verify_inclusion(index, size, leaf, root, audit_path):
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in audit_path:
        if sn == 0:
            return False
        if fn & 1 == 1 or fn == sn:
            r = node_hash(p, r)
            if fn & 1 == 0:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(first, second, first_hash, second_hash, cpath):
    if first > second:
        return False
    if first == second:
        return len(cpath) == 0 and first_hash == second_hash
    if first == 0:
        return len(cpath) == 0 and first_hash == sha256(b"")
    if len(cpath) == 0:
        return False
    cpath = list(cpath)
    if first & (first - 1) == 0:
        cpath.insert(0, first_hash)
    fn, sn = first - 1, second - 1
    while fn & 1 == 1:
        fn >>= 1
        sn >>= 1
    fr = sr = cpath[0]
    for c in cpath[1:]:
        if sn == 0:
            return False
        if fn & 1 == 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if fn & 1 == 0:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == first_hash and sr == second_hash and sn == 0


# ---- signed notes -------------------------------------------------------

ED25519_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")
SIG_PREFIX = "\u2014 "  # an em dash and a space start each signature line


def key_id(name, pub):
    return sha256(name.encode() + b"\x0a" + b"\x01" + pub)[:4]


def ed25519_verify(pub, msg, sig):
    """Checks an Ed25519 signature with the openssl CLI."""
    der = ED25519_SPKI_PREFIX + pub
    pem = ("-----BEGIN PUBLIC KEY-----\n" + base64.b64encode(der).decode() +
           "\n-----END PUBLIC KEY-----\n")
    with tempfile.TemporaryDirectory() as d:
        paths = {n: os.path.join(d, n) for n in ("pub.pem", "body", "sig")}
        with open(paths["pub.pem"], "w") as f:
            f.write(pem)
        with open(paths["body"], "wb") as f:
            f.write(msg)
        with open(paths["sig"], "wb") as f:
            f.write(sig)
        r = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", paths["pub.pem"],
                            "-rawin", "-in", paths["body"], "-sigfile", paths["sig"]],
                           capture_output=True, text=True)
        return r.returncode == 0 and "Signature Verified Successfully" in r.stdout


class Invalid(Exception):
    pass


def check_checkpoint(note, pub):
    """Returns (origin, size, root) of a checkpoint note signed by pub, whose
    key name must be the checkpoint's origin; raises Invalid with the reason."""
    try:
        text = note.decode("utf-8")
    except UnicodeDecodeError:
        raise Invalid("the note is not UTF-8")
    if "\r" in text:
        raise Invalid("the note holds a carriage return")
    sep = text.find("\n\n")
    if sep < 0:
        raise Invalid("the note has no blank line between its text and its signatures")
    body = text[:sep + 1]
    sigs = text[sep + 2:]
    lines = body.split("\n")[:-1]
    if len(lines) != 3:
        raise Invalid("the checkpoint body has %d lines, not 3" % len(lines))
    origin, size_s, root_b64 = lines
    if not origin:
        raise Invalid("empty origin")
    if not size_s.isdigit() or (size_s != "0" and size_s.startswith("0")):
        raise Invalid("size %r is not a decimal number" % size_s)
    try:
        root = base64.b64decode(root_b64, validate=True)
    except Exception:
        raise Invalid("root %r is not base64" % root_b64)
    if len(root) != 32 or base64.b64encode(root).decode() != root_b64:
        raise Invalid("root %r is not a canonical base64 SHA-256" % root_b64)
    if not sigs.endswith("\n") or not sigs.strip():
        raise Invalid("the signature block is empty or does not end in a newline")
    want_id = key_id(origin, pub)
    found = False
    for line in sigs[:-1].split("\n"):
        if not line.startswith(SIG_PREFIX):
            raise Invalid("signature line %r does not start with an em dash" % line)
        parts = line[len(SIG_PREFIX):].split(" ")
        if len(parts) != 2:
            raise Invalid("signature line %r is not 'name signature'" % line)
        name, sig_b64 = parts
        try:
            blob = base64.b64decode(sig_b64, validate=True)
        except Exception:
            raise Invalid("signature %r is not base64" % sig_b64)
        if name != origin or len(blob) < 4 or blob[:4] != want_id:
            continue  # another signer's line
        if len(blob) != 4 + 64:
            raise Invalid("the Ed25519 signature is %d bytes, not 64" % (len(blob) - 4))
        if not ed25519_verify(pub, body.encode(), blob[4:]):
            raise Invalid("the Ed25519 signature does not verify")
        found = True
    if not found:
        raise Invalid("no signature by %s with key id %s" % (origin, want_id.hex()))
    return origin, int(size_s), root


def check_vkey(vkey, name, pub):
    parts = vkey.split("+", 2)  # a name holds no "+"; base64 may
    if len(parts) != 3:
        raise Invalid("vkey %r is not name+keyid+key" % vkey)
    if parts[0] != name:
        raise Invalid("vkey names %r, not %r" % (parts[0], name))
    if parts[1] != key_id(name, pub).hex():
        raise Invalid("vkey key id %s, want %s" % (parts[1], key_id(name, pub).hex()))
    if base64.b64decode(parts[2], validate=True) != b"\x01" + pub:
        raise Invalid("vkey key is not 0x01 || pub")


# ---- self-test ----------------------------------------------------------

VEC_LEAVES = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657",
              "606162636465666768696a6b6c6d6e6f"]
VEC_ROOTS = {
    1: "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    2: "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    3: "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    4: "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    5: "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    6: "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    7: "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    8: "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}
VEC_INCLUSION = {
    (0, 8): ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
             "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
             "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"],
    (5, 8): ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
             "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
             "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"],
}
VEC_CONSISTENCY = {
    (6, 8): ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
             "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
             "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"],
    (2, 5): ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
             "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"],
    (1, 1): [],
}


def mutations(p):
    """Proofs that must not verify in place of p: each byte of each hash
    with one bit flipped, an extra hash, one hash less, two hashes swapped."""
    for i in range(len(p)):
        for j in range(32):
            for bit in (0x01, 0x80):
                q = list(p)
                h = bytearray(q[i])
                h[j] ^= bit
                q[i] = bytes(h)
                yield "bit %#x of byte %d of hash %d flipped" % (bit, j, i), q
    yield "an extra hash", list(p) + [sha256(b"extra")]
    yield "an extra copy of the last hash", list(p) + list(p[-1:] or [sha256(b"")])
    if p:
        yield "the last hash dropped", list(p[:-1])
        yield "the first hash dropped", list(p[1:])
    for i in range(len(p) - 1):
        if p[i] != p[i + 1]:
            q = list(p)
            q[i], q[i + 1] = q[i + 1], q[i]
            yield "hashes %d and %d swapped" % (i, i + 1), q


def selftest():
    checks = 0
    errors = []

    def expect(cond, what):
        nonlocal checks
        checks += 1
        if not cond:
            errors.append(what)

    leaves = [leaf_hash(bytes.fromhex(h)) for h in VEC_LEAVES]
    expect(mth([]).hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
           "empty tree hash")
    roots = {}
    for n in range(1, 9):
        roots[n] = mth(leaves[:n])
        expect(roots[n].hex() == VEC_ROOTS[n], "root of %d leaves: %s" % (n, roots[n].hex()))
    for (m, n), want in VEC_INCLUSION.items():
        got = [h.hex() for h in path(m, leaves[:n])]
        expect(got == want, "inclusion path (%d, %d): %s" % (m, n, got))
        expect(verify_inclusion(m, n, leaves[m], bytes.fromhex(VEC_ROOTS[n]),
                                [bytes.fromhex(h) for h in want]),
               "the RFC vector for inclusion (%d, %d) verifies" % (m, n))
    for (m, n), want in VEC_CONSISTENCY.items():
        got = [h.hex() for h in (proof(m, leaves[:n]) if m < n else [])]
        expect(got == want, "consistency proof %d -> %d: %s" % (m, n, got))
        expect(verify_consistency(m, n, bytes.fromhex(VEC_ROOTS[m]), bytes.fromhex(VEC_ROOTS[n]),
                                  [bytes.fromhex(h) for h in want]),
               "the RFC vector for consistency %d -> %d verifies" % (m, n))

    other = sha256(b"not a node of this tree")
    for n in range(1, 9):
        root = roots[n]
        for m in range(n):
            p = path(m, leaves[:n])
            expect(verify_inclusion(m, n, leaves[m], root, p), "inclusion (%d, %d)" % (m, n))
            expect(not verify_inclusion(m, n, leaves[m], other, p),
                   "inclusion (%d, %d) against a wrong root" % (m, n))
            expect(not verify_inclusion(m, n, other, root, p),
                   "inclusion (%d, %d) of a wrong leaf" % (m, n))
            expect(not verify_inclusion(n, n, leaves[m], root, p),
                   "inclusion (%d, %d) claimed at index = size" % (m, n))
            for j in range(n):
                if j != m:
                    expect(not verify_inclusion(j, n, leaves[m], root, p),
                           "inclusion (%d, %d) claimed at index %d" % (m, n, j))
            for what, q in mutations(p):
                expect(not verify_inclusion(m, n, leaves[m], root, q),
                       "inclusion (%d, %d) with %s" % (m, n, what))
        for m in range(1, n + 1):
            p = proof(m, leaves[:n]) if m < n else []
            expect(verify_consistency(m, n, roots[m], root, p), "consistency %d -> %d" % (m, n))
            expect(not verify_consistency(m, n, other, root, p),
                   "consistency %d -> %d from a wrong old root" % (m, n))
            expect(not verify_consistency(m, n, roots[m], other, p),
                   "consistency %d -> %d to a wrong new root" % (m, n))
            expect(not verify_consistency(n, m, root, roots[m], p) or m == n,
                   "consistency claimed backwards %d -> %d" % (n, m))
            if m < n:
                for what, q in mutations(p):
                    expect(not verify_consistency(m, n, roots[m], root, q),
                           "consistency %d -> %d with %s" % (m, n, what))
                for m2 in range(1, n):
                    if m2 != m and roots[m2] != roots[m]:
                        expect(not verify_consistency(m2, n, roots[m], root, p),
                               "consistency %d -> %d claimed from size %d" % (m, n, m2))
    expect(verify_consistency(0, 5, sha256(b""), roots[5], []), "consistency from the empty tree")

    # Signed notes: the key id of a known name and key, and rejection paths
    # that do not need a signer (the tests sign real notes with the server).
    pub = bytes(range(32))
    expect(key_id("example.com/log", pub) ==
           hashlib.sha256(b"example.com/log\n\x01" + pub).digest()[:4], "key id")
    body = "o\n1\n" + base64.b64encode(leaves[0]).decode() + "\n"
    for bad in [body, body + "\n", body + "\n- o AAAA\n", "o\n1\n\n\u2014 o AAAA\n"]:
        try:
            check_checkpoint(bad.encode(), pub)
            ok = False
        except Invalid:
            ok = True
        expect(ok, "malformed note %r refused" % bad)
    blob = base64.b64encode(key_id("o", pub) + bytes(64)).decode()
    try:
        check_checkpoint((body + "\n\u2014 o " + blob + "\n").encode(), pub)
        ok = False
    except Invalid as e:
        ok = "does not verify" in str(e)
    expect(ok, "a zero signature with the right key id is checked by openssl and refused")

    # Verifier keys: base64 may hold "+" (here: 0xfb bytes give "+7", "/" too).
    for kp in (bytes([0xfb] * 32), bytes(range(32))):
        vk = "a.example/log+" + key_id("a.example/log", kp).hex() + "+" + \
            base64.b64encode(b"\x01" + kp).decode()
        try:
            check_vkey(vk, "a.example/log", kp)
            ok = True
        except Invalid:
            ok = False
        expect(ok, "vkey %s accepted" % vk)
        try:
            check_vkey(vk, "a.example/log", sha256(kp))
            ok = False
        except Invalid:
            ok = True
        expect(ok, "vkey %s refused for another key" % vk)

    for e in errors:
        print("selftest FAIL: " + e, file=sys.stderr)
    print("selftest: %d checks, %d failed" % (checks, len(errors)))
    return 0 if not errors else 1


# ---- command line -------------------------------------------------------

def hexarg(s, what):
    try:
        b = bytes.fromhex(s)
    except ValueError:
        raise SystemExit2("%s %r is not hex" % (what, s))
    if len(b) != 32:
        raise SystemExit2("%s %r is not 32 bytes" % (what, s))
    return b


def intarg(s, what):
    if not s.isdigit():
        raise SystemExit2("%s %r is not a number" % (what, s))
    return int(s)


class SystemExit2(Exception):
    pass


def stdin_data():
    out = []
    for line in sys.stdin.read().split("\n"):
        if line.strip():
            out.append(base64.b64decode(line.strip(), validate=True))
    return out


def main(argv):
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, args = argv[0], argv[1:]
    if cmd == "selftest" and not args:
        return selftest()
    if cmd == "inclusion" and len(args) >= 4:
        index, size = intarg(args[0], "index"), intarg(args[1], "size")
        leaf, root = hexarg(args[2], "leaf hash"), hexarg(args[3], "root")
        p = [hexarg(h, "path hash") for h in args[4:]]
        ok = verify_inclusion(index, size, leaf, root, p)
        print("inclusion of %d in %d: %s" % (index, size, "valid" if ok else "INVALID"))
        return 0 if ok else 1
    if cmd == "consistency" and len(args) >= 4:
        first, second = intarg(args[0], "first"), intarg(args[1], "second")
        r1, r2 = hexarg(args[2], "first root"), hexarg(args[3], "second root")
        p = [hexarg(h, "path hash") for h in args[4:]]
        ok = verify_consistency(first, second, r1, r2, p)
        print("consistency %d -> %d: %s" % (first, second, "valid" if ok else "INVALID"))
        return 0 if ok else 1
    if cmd == "checkpoint" and len(args) == 2:
        with open(args[0], "rb") as f:
            note = f.read()
        try:
            origin, size, root = check_checkpoint(note, hexarg(args[1], "public key"))
        except Invalid as e:
            print("checkpoint INVALID: %s" % e, file=sys.stderr)
            return 1
        print("%s %d %s" % (origin, size, root.hex()))
        return 0
    if cmd == "vkey" and len(args) == 3:
        try:
            check_vkey(args[0], args[1], hexarg(args[2], "public key"))
        except Invalid as e:
            print("vkey INVALID: %s" % e, file=sys.stderr)
            return 1
        return 0
    if cmd == "leaves" and not args:
        for d in stdin_data():
            print(leaf_hash(d).hex())
        return 0
    if cmd == "root" and not args:
        print(mth([leaf_hash(d) for d in stdin_data()]).hex())
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except SystemExit2 as e:
        print("merkle_verify: %s" % e, file=sys.stderr)
        sys.exit(2)
