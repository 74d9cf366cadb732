#!/usr/bin/env python3
"""An outside BagIt validator, for the integration tests.

Written from RFC 8493 (BagIt 1.0) §2 and §3, sharing no code with Custos, and
using only Python's standard library, to cross-check `custos verify BAG`:

  complete (§3): bagit.txt, data/ and at least one payload manifest are
    present; every file listed in a manifest exists; every file under data/
    is listed in every payload manifest; every element conforms (manifest
    lines are "<checksum> <path>", paths relative, '/'-separated, with only
    LF, CR and '%' percent-encoded, never '..', absolute, with a backslash,
    listed twice, or outside data/ in a payload manifest; tag manifests list
    no payload file);
  valid (§3): complete, and every checksum in every payload and tag
    manifest matches the file;
  Payload-Oxum (§2.2.2): when bag-info.txt has one, it is
    "<octets>.<files>" of the payload.

Usage: bagit_validate.py [--all-tags] [--json] BAG
  --all-tags   also require every tag file (every file outside data/ except
               the tag manifests) to be listed in every tag manifest, as
               docs/EXPORT.md promises for Custos bags (RFC 8493 only says a
               tag manifest MAY list tag files)
  --json       print {"valid": bool, "problems": [...], "files", "bytes"}

Exit status: 0 the bag is valid, 1 it is not (each problem printed on a line
of its own), 2 usage error.
"""
import hashlib
import json
import os
import re
import sys
import unicodedata

# RFC 8493 §2.4: the algorithm names of the registry hashlib knows.
ALGORITHMS = {"md5", "sha1", "sha224", "sha256", "sha384", "sha512"}
MANIFEST = re.compile(r"^(tag)?manifest-([a-z0-9]+)\.txt$")


def nfc(s):
    return unicodedata.normalize("NFC", s)


class Bag:
    def __init__(self, base, all_tags):
        self.base = base
        self.all_tags = all_tags
        self.problems = []

    def problem(self, msg):
        self.problems.append(msg)

    # ---- reading --------------------------------------------------------

    def lines(self, rel):
        """The lines of a tag file: UTF-8, no BOM, LF, CR or CRLF ends."""
        with open(os.path.join(self.base, rel), "rb") as f:
            raw = f.read()
        if raw.startswith(b"\xef\xbb\xbf"):
            self.problem(f"{rel}: starts with a byte order mark")
            raw = raw[3:]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            self.problem(f"{rel}: not UTF-8 ({e})")
            text = raw.decode("utf-8", "replace")
        out = re.split(r"\r\n|\r|\n", text)
        if out and out[-1] == "":
            out.pop()
        elif out:
            self.problem(f"{rel}: the last line has no line end")
        return out

    def walk(self):
        """Every regular file under the base, relative, '/'-separated."""
        files = {}
        for root, dirs, names in os.walk(self.base, followlinks=False):
            for d in list(dirs):
                if os.path.islink(os.path.join(root, d)):
                    self.problem(f"{os.path.relpath(os.path.join(root, d), self.base)}: a symbolic link")
                    dirs.remove(d)
            for n in names:
                full = os.path.join(root, n)
                rel = os.path.relpath(full, self.base).replace(os.sep, "/")
                if os.path.islink(full) or not os.path.isfile(full):
                    self.problem(f"{rel}: not a regular file")
                    continue
                files[nfc(rel)] = rel
        return files

    # ---- the parts ------------------------------------------------------

    def declaration(self):
        if not os.path.isfile(os.path.join(self.base, "bagit.txt")):
            self.problem("bagit.txt: missing")
            return
        lines = self.lines("bagit.txt")
        want = [r"BagIt-Version: [0-9]+\.[0-9]+", r"Tag-File-Character-Encoding: \S+"]
        if len(lines) != 2 or not all(re.fullmatch(w, l) for w, l in zip(want, lines)):
            self.problem(f"bagit.txt: not the two lines of a bag declaration: {lines!r}")
        elif lines[0] != "BagIt-Version: 1.0":
            self.problem(f"bagit.txt: {lines[0]!r}, this validator checks BagIt 1.0")
        elif lines[1] != "Tag-File-Character-Encoding: UTF-8":
            self.problem(f"bagit.txt: {lines[1]!r}, this validator reads UTF-8 only")

    @staticmethod
    def decode_path(p):
        """§2.1.3: only %0A, %0D and %25, and every '%' is one of them."""
        out, i = [], 0
        while i < len(p):
            if p[i] == "%":
                code = p[i + 1:i + 3].upper()
                if code not in ("0A", "0D", "25"):
                    return None
                out.append({"0A": "\n", "0D": "\r", "25": "%"}[code])
                i += 3
            else:
                out.append(p[i])
                i += 1
        return "".join(out)

    def manifest(self, name, alg, tag):
        entries = {}
        hexlen = hashlib.new(alg).digest_size * 2
        for no, line in enumerate(self.lines(name), 1):
            m = re.fullmatch(r"([0-9A-Fa-f]+)[ \t]+(.+)", line)
            if not m or len(m.group(1)) != hexlen:
                self.problem(f"{name} line {no}: not '<{alg} in hex> <path>': {line!r}")
                continue
            path = self.decode_path(m.group(2))
            if path is None:
                self.problem(f"{name} line {no}: a '%' that is not %0A, %0D or %25")
                continue
            parts = path.split("/")
            if path.startswith("/") or "\\" in path or any(p in ("", ".", "..") for p in parts):
                self.problem(f"{name} line {no}: unsafe path {path!r}")
                continue
            if not tag and parts[0] != "data":
                self.problem(f"{name} line {no}: {path!r} is outside data/")
                continue
            if tag and parts[0] == "data":
                self.problem(f"{name} line {no}: {path!r} is a payload file in a tag manifest")
                continue
            key = nfc(path)
            if key in entries:
                self.problem(f"{name} line {no}: {path!r} listed again")
                continue
            entries[key] = m.group(1).lower()
        return entries

    def hash(self, rel, alg):
        h = hashlib.new(alg)
        with open(os.path.join(self.base, rel), "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        return h.hexdigest()

    def bag_info(self):
        info = {}
        if not os.path.isfile(os.path.join(self.base, "bag-info.txt")):
            return info
        label = None
        for no, line in enumerate(self.lines("bag-info.txt"), 1):
            if line[:1] in (" ", "\t"):
                if label is None:
                    self.problem(f"bag-info.txt line {no}: a continuation with nothing to continue")
                else:
                    info[label][-1] += " " + line.strip()
                continue
            m = re.fullmatch(r"([^:\s][^:]*[^:\s]|[^:\s]):[ \t](.*)", line) or re.fullmatch(r"([^:\s][^:]*):()", line)
            if not m:
                self.problem(f"bag-info.txt line {no}: not 'Label: value': {line!r}")
                label = None
                continue
            label = m.group(1)
            info.setdefault(label, []).append(m.group(2))
        return info

    # ---- the whole ------------------------------------------------------

    def validate(self):
        if not os.path.isdir(self.base):
            self.problem(f"{self.base}: not a directory")
            return 0, 0
        self.declaration()
        if not os.path.isdir(os.path.join(self.base, "data")):
            self.problem("data/: missing")
        files = self.walk()
        manifests = []
        for rel in sorted(files.values()):
            m = MANIFEST.match(rel)
            if not m:
                continue
            if m.group(2) not in ALGORITHMS:
                self.problem(f"{rel}: an algorithm this validator does not know")
                continue
            manifests.append((rel, m.group(2), bool(m.group(1))))
        if not any(not tag for _, _, tag in manifests):
            self.problem("no payload manifest (manifest-<alg>.txt)")
        payload = {k: v for k, v in files.items() if k.startswith("data/")}
        tags = {k: v for k, v in files.items()
                if not k.startswith("data/") and not re.match(r"tagmanifest-[^/]*$", v)}
        for name, alg, tag in manifests:
            entries = self.manifest(name, alg, tag)
            # complete: listed files exist; every payload file listed
            for key in sorted(entries):
                if key not in files:
                    self.problem(f"{name}: {key} is listed but missing")
            wanted = tags if tag else payload
            if not tag or self.all_tags:
                for key in sorted(wanted):
                    if key not in entries:
                        self.problem(f"{name}: {key} is not listed")
            # valid: every checksum
            for key in sorted(entries):
                if key in files:
                    got = self.hash(files[key], alg)
                    if got != entries[key]:
                        self.problem(f"{name}: {key} hashes to {got}, the manifest says {entries[key]}")
        if os.path.isfile(os.path.join(self.base, "fetch.txt")):
            for no, line in enumerate(self.lines("fetch.txt"), 1):
                parts = line.split(None, 2)
                if len(parts) != 3 or nfc(parts[2]) not in files:
                    self.problem(f"fetch.txt line {no}: not fetched here, so the bag is not complete")
        octets = sum(os.path.getsize(os.path.join(self.base, v)) for v in payload.values())
        info = self.bag_info()
        oxum = info.get("Payload-Oxum")
        if oxum is not None:
            if len(oxum) != 1 or not re.fullmatch(r"[0-9]+\.[0-9]+", oxum[0]):
                self.problem(f"bag-info.txt: Payload-Oxum {oxum!r} is not one '<octets>.<files>'")
            elif oxum[0] != f"{octets}.{len(payload)}":
                self.problem(f"bag-info.txt: Payload-Oxum {oxum[0]}, the payload is {octets}.{len(payload)}")
        return len(payload), octets


def main(argv):
    args = [a for a in argv[1:] if not a.startswith("--")]
    flags = {a for a in argv[1:] if a.startswith("--")}
    if len(args) != 1 or flags - {"--all-tags", "--json"}:
        print(__doc__, file=sys.stderr)
        return 2
    bag = Bag(args[0], "--all-tags" in flags)
    n, octets = bag.validate()
    if "--json" in flags:
        print(json.dumps({"valid": not bag.problems, "problems": bag.problems, "files": n, "bytes": octets}))
    else:
        for p in bag.problems:
            print(p)
        if not bag.problems:
            print(f"valid: {n} payload files, {octets} bytes")
    return 0 if not bag.problems else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
