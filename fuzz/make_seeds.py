#!/usr/bin/env python3
"""Builds the seed corpora of the fuzz targets into fuzz/seeds/<target>/ (and the test PKI the
pkcs7 target trusts into fuzz/pki/).

Run from anywhere: `python3 fuzz/make_seeds.py`. It needs python3 and the openssl CLI only.
Everything but the signed specs comes out byte for byte the same on every run (fixed times,
sorted members, gzip without a time stamp); the signed specs use a fresh key pair each time,
so regenerating them also rewrites fuzz/pki/ca.pem and fuzz/pki/now, which the pkcs7 target
compiles in. The seeds are small on purpose: libFuzzer grows its own corpus from them.

Sources: the repository's appspec fixtures, the example and seed applications (packed as tar,
tgz and zip), the packaged configuration file, and members crafted here after the hostile
cases of tests/lib_bundle_hostile.rs and the header forms the tar reader supports.
"""

import gzip
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile

FUZZ = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(FUZZ)
SEEDS = os.path.join(FUZZ, "seeds")
PKI = os.path.join(FUZZ, "pki")
MTIME = 1_600_000_000  # 2020-09-13, as the test archives use


def put(target, name, data):
    d = os.path.join(SEEDS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def repo_files(rel_dir, suffixes):
    base = os.path.join(REPO, rel_dir)
    out = []
    for root, _dirs, files in os.walk(base):
        for f in sorted(files):
            if f.endswith(suffixes):
                out.append(os.path.join(root, f))
    return sorted(out)


# ---------------------------------------------------------------------------------------------
# appspec

APPSPECS = {
    "all-sections.yml": """version: 0.0
os: linux
files:
  - source: /
    destination: /var/www/app
    overwrite: true
  - source: config/app.conf
    destination: /etc/app
file_exists_behavior: RETAIN
permissions:
  - object: /var/www/app
    pattern: "*.sh"
    except: [keep.sh]
    owner: www-data
    group: www-data
    mode: 0755
    acls:
      - u:deploy:rwx
      - d:g:ops:r-x
    context:
      user: system_u
      type: httpd_sys_content_t
      range: s0-s0:c0.c1023
    type:
      - file
      - directory
hooks:
  ApplicationStop:
    - location: scripts/stop.sh
      timeout: 60
      runas: root
  BeforeInstall:
    - location: scripts/before.sh
  AfterInstall:
    - location: scripts/after.sh
      timeout: 3600
      runas: deploy
  ApplicationStart:
    - location: scripts/start.sh
  ValidateService:
    - location: scripts/check.sh
      timeout: 30
  BeforeBlockTraffic:
    - location: scripts/block.sh
  AfterAllowTraffic:
    - location: scripts/allow.sh
""",
    "flow-style.yml": "{version: 0.0, os: linux, files: [{source: a, destination: /b}], "
    "hooks: {AfterInstall: [{location: s.sh, timeout: '10'}]}}\n",
    "anchors.yml": """version: 0.0
os: linux
hooks:
  AfterInstall: &h
    - location: a.sh
  ApplicationStart: *h
""",
    "block-scalars.yml": """version: 0.0
os: linux
files:
  - source: |
      multi
    destination: >
      /folded
""",
    "quoted-version.yml": 'version: "0.0"\nos: "linux"\nfile_exists_behavior: OVERWRITE\n',
    "windows.yml": "version: 0.0\nos: windows\n",
    "deep.yml": "version: 0.0\nos: linux\nhooks: " + "[" * 70 + "]" * 70 + "\n",
    "unknown-keys.yml": "version: 0.0\nos: linux\nextra: 1\nhooks:\n  MyEvent:\n    - location: x\n",
    "empty.yml": "",
    "bom-crlf.yml": "\ufeffversion: 0.0\r\nos: linux\r\n",
}


def appspec_seeds():
    for path in repo_files("tests/fixtures/appspec", (".yml", ".yaml")):
        rel = os.path.relpath(path, os.path.join(REPO, "tests/fixtures/appspec"))
        put("appspec", "fixture-" + rel.replace("/", "-"), open(path, "rb").read())
    for app in ("examples/hello-app", "tests/fixtures/seed-app"):
        put("appspec", app.replace("/", "-") + ".yml", open(os.path.join(REPO, app, "appspec.yml"), "rb").read())
    for name, text in APPSPECS.items():
        put("appspec", name, text)


# ---------------------------------------------------------------------------------------------
# tar and tgz


def tar_of(members, fmt=tarfile.PAX_FORMAT, pax_headers=None):
    """members: list of (TarInfo, data or None)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt, pax_headers=pax_headers) as t:
        for info, data in members:
            info.mtime = info.mtime or MTIME
            t.addfile(info, io.BytesIO(data) if data is not None else None)
    # tarfile pads to 10 KiB records; keep the two end blocks only (less for the fuzzer to chew).
    raw = buf.getvalue().rstrip(b"\0")
    return pad(raw) + b"\0" * 1024


def ti(name, kind=tarfile.REGTYPE, data=b"", mode=0o644, link="", uid=0, gid=0, uname="", gname=""):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.linkname = link
    info.uid, info.gid, info.uname, info.gname = uid, gid, uname, gname
    info.mtime = MTIME
    if kind in (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE):
        info.size = len(data)
        return info, data
    return info, None


def tree_tar(app):
    """A repository directory packed as GNU tar does, sorted, fixed times and owners."""
    base = os.path.join(REPO, app)
    members = []
    for root, dirs, files in os.walk(base):
        dirs.sort()
        rel_root = os.path.relpath(root, base)
        prefix = "" if rel_root == "." else rel_root + "/"
        if prefix:
            members.append(ti(prefix, tarfile.DIRTYPE, mode=0o755))
        for f in sorted(files):
            p = os.path.join(root, f)
            mode = 0o755 if os.access(p, os.X_OK) else 0o644
            members.append(ti(prefix + f, data=open(p, "rb").read(), mode=mode))
    return members


def raw_header(name, size, typeflag):
    """A hand-made ustar header (for forms tarfile does not write)."""
    h = bytearray(512)
    h[0:len(name)] = name
    h[100:108] = b"0000644\0"
    h[108:116] = b"0000000\0"
    h[116:124] = b"0000000\0"
    h[124:136] = b"%011o\0" % size
    h[136:148] = b"%011o\0" % MTIME
    h[156] = typeflag
    h[257:263] = b"ustar\0"
    h[263:265] = b"00"
    h[148:156] = b" " * 8
    h[148:156] = b"%06o\0 " % sum(h)
    return bytes(h)


def pad(data):
    return data + b"\0" * ((512 - len(data) % 512) % 512)


def base256_header(name, data):
    h = bytearray(raw_header(name, len(data), ord("0")))
    h[108:116] = b"\x80" + (70000).to_bytes(7, "big")  # uid past octal's reach
    h[124:136] = b"\x80" + len(data).to_bytes(11, "big")
    h[148:156] = b" " * 8
    h[148:156] = b"%06o\0 " % sum(h)
    return bytes(h) + pad(data)


def tar_seeds():
    seeds = {}
    seeds["hello-app.tar"] = tar_of(tree_tar("examples/hello-app"))
    seeds["seed-app.tar"] = tar_of(tree_tar("tests/fixtures/seed-app"), fmt=tarfile.GNU_FORMAT)
    seeds["top-level-dir.tar"] = tar_of(
        [ti("app/", tarfile.DIRTYPE, mode=0o755), ti("app/appspec.yml", data=APPSPECS["quoted-version.yml"].encode())]
    )
    long = "d/" + "n" * 150 + "/file.txt"
    seeds["gnu-long-names.tar"] = tar_of(
        [ti(long, data=b"long\n"), ti("l" * 120, tarfile.SYMTYPE, link="t" * 130)], fmt=tarfile.GNU_FORMAT
    )
    seeds["ustar-prefix.tar"] = tar_of([ti("p" * 90 + "/" + "q" * 90, data=b"x")], fmt=tarfile.USTAR_FORMAT)
    pax_file, pax_data = ti("pax/é-ü.txt", data=b"pax\n", uid=3_000_000, uname="deploy", gname="deploy")
    pax_file.pax_headers = {"mtime": "1600000000.123456789", "comment": "x"}
    seeds["pax.tar"] = tar_of([(pax_file, pax_data)], pax_headers={"mtime": "1600000000.5", "uname": "root"})
    seeds["links.tar"] = tar_of(
        [
            ti("dir/", tarfile.DIRTYPE, mode=0o700),
            ti("dir/a.txt", data=b"a"),
            ti("dir/hard", tarfile.LNKTYPE, link="dir/a.txt"),
            ti("sym", tarfile.SYMTYPE, link="dir/a.txt"),
            ti("dangling", tarfile.SYMTYPE, link="../outside"),
        ]
    )
    seeds["hostile-escape.tar"] = tar_of([ti("../escape.txt", data=b"x"), ti("/abs.txt", data=b"x")])
    seeds["hostile-through-link.tar"] = tar_of(
        [ti("up", tarfile.SYMTYPE, link=".."), ti("up/written-through.txt", data=b"x")]
    )
    seeds["hostile-hardlink-out.tar"] = tar_of([ti("h", tarfile.LNKTYPE, link="/etc/passwd")])
    seeds["specials.tar"] = tar_of(
        [ti("fifo", tarfile.FIFOTYPE), ti("chr", tarfile.CHRTYPE), ti("blk", tarfile.BLKTYPE)]
    )
    seeds["modes.tar"] = tar_of(
        [
            ti("setuid", data=b"#!/bin/sh\n", mode=0o4755),
            ti("ro-dir/", tarfile.DIRTYPE, mode=0o500),
            ti("ro-dir/f", data=b"f", mode=0o000),
            ti("same", data=b"first"),
            ti("same", data=b"second"),
        ]
    )
    seeds["owners.tar"] = tar_of([ti("o", data=b"o", uid=1, gid=1, uname="daemon", gname="nosuchgroup")])
    seeds["base256.tar"] = base256_header(b"big-uid.txt", b"b256") + b"\0" * 1024
    seeds["volume-and-sparse.tar"] = (
        raw_header(b"LABEL", 0, ord("V")) + raw_header(b"sparse", 0, ord("S")) + b"\0" * 1024
    )
    pax_body = b"16 path=renamed\n"
    seeds["pax-raw.tar"] = (
        raw_header(b"PaxHeader", len(pax_body), ord("x"))
        + pad(pax_body)
        + raw_header(b"orig", 3, ord("0"))
        + pad(b"abc")
        + b"\0" * 1024
    )
    seeds["truncated.tar"] = tar_of([ti("t.txt", data=b"0123456789" * 100)])[:700]
    seeds["empty.tar"] = b"\0" * 1024
    for name, data in seeds.items():
        put("tar", name, data)
        put("tgz", name[:-4] + ".tgz", gzip.compress(data, mtime=0))
    # The tar target also takes gzip (GNU tar -xf does); the tgz target gets odd gzip framing.
    put("tar", "hello-app-gzipped.tar", gzip.compress(seeds["hello-app.tar"], mtime=0))
    two = gzip.compress(seeds["links.tar"][:1024], mtime=0) + gzip.compress(seeds["links.tar"][1024:], mtime=0)
    put("tgz", "multi-member.tgz", two)
    put("tgz", "not-tar-inside.tgz", gzip.compress(b"plain text, not a tar archive\n", mtime=0))
    bomb = gzip.compress(tar_of([ti("zeros", data=b"\0" * (6 << 20))]), mtime=0, compresslevel=9)
    put("tgz", "bomb.tgz", bomb)
    bad_crc = bytearray(gzip.compress(seeds["top-level-dir.tar"], mtime=0))
    bad_crc[-8] ^= 0xFF
    put("tgz", "bad-crc.tgz", bytes(bad_crc))


# ---------------------------------------------------------------------------------------------
# zip


def zinfo(name, mode=None, dos=False, extra=b""):
    z = zipfile.ZipInfo(name, date_time=(2020, 9, 13, 12, 26, 40))
    z.compress_type = zipfile.ZIP_DEFLATED
    if dos:
        z.create_system = 0
        z.external_attr = 0x10 if name.endswith("/") else 0
    else:
        z.create_system = 3
        if mode is not None:
            z.external_attr = mode << 16
    z.extra = extra
    return z


def zip_of(entries, **kw):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", **kw) as z:
        for info, data in entries:
            z.writestr(info, data)
    return buf.getvalue()


def tree_zip(app):
    base = os.path.join(REPO, app)
    entries = []
    for root, dirs, files in os.walk(base):
        dirs.sort()
        rel_root = os.path.relpath(root, base)
        prefix = "" if rel_root == "." else rel_root + "/"
        if prefix:
            entries.append((zinfo(prefix, 0o40755), b""))
        for f in sorted(files):
            p = os.path.join(root, f)
            mode = 0o100755 if os.access(p, os.X_OK) else 0o100644
            entries.append((zinfo(prefix + f, mode), open(p, "rb").read()))
    return entries


def zip_seeds():
    put("zip", "hello-app.zip", zip_of(tree_zip("examples/hello-app")))
    put("zip", "seed-app.zip", zip_of(tree_zip("tests/fixtures/seed-app")))
    ut = b"UT" + (5).to_bytes(2, "little") + b"\x01" + MTIME.to_bytes(4, "little")
    stored = zinfo("stored.txt", 0o100644, extra=ut)
    stored.compress_type = zipfile.ZIP_STORED
    put(
        "zip",
        "kinds.zip",
        zip_of(
            [
                (zinfo("dir/", 0o40700), b""),
                (zinfo("dir/f.txt", 0o100600), b"f"),
                (zinfo("link", 0o120777), b"dir/f.txt"),
                (zinfo("fifo", 0o10644), b""),
                (zinfo("setuid", 0o104755), b"#!/bin/sh\n"),
                (stored, b"stored"),
            ]
        ),
    )
    put("zip", "dos-made.zip", zip_of([(zinfo("DOS/", dos=True), b""), (zinfo("DOS/A.TXT", dos=True), b"a\r\n")]))
    put(
        "zip",
        "hostile.zip",
        zip_of([(zinfo("../escape", 0o100644), b"x"), (zinfo("/abs", 0o100644), b"x"), (zinfo("up", 0o120777), b"..")]),
    )
    put("zip", "zip64.zip", zip_of([(zinfo("z64.txt", 0o100644), b"zip64")], allowZip64=True))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        with z.open(zinfo("forced64.txt", 0o100644), "w", force_zip64=True) as f:
            f.write(b"forced zip64 sizes")
    put("zip", "forced-zip64.zip", buf.getvalue())
    put("zip", "empty.zip", zip_of([]))
    put("zip", "bomb.zip", zip_of([(zinfo("zeros", 0o100644), b"\0" * (6 << 20))]))
    trailing = zip_of([(zinfo("a", 0o100644), b"a")])
    put("zip", "prefixed-sfx.zip", b"#!/bin/sh\nexit 0\n" + trailing)


# ---------------------------------------------------------------------------------------------
# deployment spec (JSON), pkcs7 envelopes

SPECS = {
    "s3.json": {
        "DeploymentId": "d-ABCDEFGHI",
        "DeploymentGroupId": "g-1",
        "DeploymentGroupName": "grp",
        "ApplicationName": "app",
        "DeploymentCreator": "user",
        "DeploymentType": "IN_PLACE",
        "AppSpecFilename": "appspec.yml",
        "Revision": {
            "RevisionType": "S3",
            "S3Revision": {"Bucket": "b", "Key": "k.zip", "BundleType": "zip", "Version": "v1", "ETag": "e"},
        },
    },
    "github.json": {
        "DeploymentId": "arn:aws:codedeploy:us-east-1:111122223333:deployment/d-XYZ",
        "DeploymentGroupId": "g",
        "DeploymentGroupName": "grp",
        "ApplicationName": "app",
        "DeploymentCreator": "codeDeployRollback",
        "DeploymentType": "BLUE_GREEN",
        "GitHubAccessToken": "token",
        "AllPossibleLifecycleEvents": ["BeforeInstall", "AfterInstall"],
        "AgentActionOverrides": {"AgentOverrides": {"FileExistsBehavior": "overwrite"}},
        "Revision": {
            "RevisionType": "GitHub",
            "GitHubRevision": {"Account": "a", "Repository": "r", "CommitId": "c0ffee", "BundleType": "tar"},
        },
    },
    "local-file.json": {
        "DeploymentId": "d-LOCAL",
        "DeploymentGroupId": "default-local-group",
        "DeploymentGroupName": "default-local-group",
        "ApplicationName": "local",
        "DeploymentCreator": "codeDeployLocal",
        "Revision": {"RevisionType": "Local File", "LocalRevision": {"Location": "/tmp/b.tgz", "BundleType": "tgz"}},
    },
    "local-dir.json": {
        "DeploymentId": "d-DIR",
        "DeploymentGroupId": "g",
        "DeploymentGroupName": "g",
        "ApplicationName": "a",
        "Revision": {"RevisionType": "Local Directory", "LocalRevision": {"Location": "/srv/app", "BundleType": "directory"}},
    },
    "missing-revision.json": {"DeploymentId": "d-X", "DeploymentGroupId": "g", "DeploymentGroupName": "g", "ApplicationName": "a"},
}


def spec_seeds():
    for name, doc in SPECS.items():
        put("deployspec", name, json.dumps(doc, indent=1 if "dir" in name else None))
    put("deployspec", "not-object.json", "[1, 2, 3]\n")
    put("deployspec", "escapes.json", '{"DeploymentId": "d-\\u0041\\ud83d\\ude00", "x": 1e999}')


def openssl(cwd, *args):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def pkcs7_seeds():
    """A CA, an intermediate, RSA and EC signers; specs signed as the service (and the emulator's
    Pki::sign, which is openssl's PKCS7_sign) does, plus the variants tests/lib_control_pkcs7.rs
    covers."""
    with tempfile.TemporaryDirectory() as d:
        days = "36500"
        open(os.path.join(d, "ca.ext"), "w").write("basicConstraints=critical,CA:TRUE\nkeyUsage=keyCertSign\n")
        open(os.path.join(d, "leaf.ext"), "w").write("basicConstraints=CA:FALSE\nsubjectKeyIdentifier=hash\n")
        openssl(d, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
                "-days", days, "-subj", "/CN=Fuzz Seed CA")

        def issue(name, subj, ca, ext, *key):
            openssl(d, "req", "-newkey", *key, "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subj)
            openssl(d, "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
                    "-set_serial", "7", "-out", f"{name}.pem", "-days", days, "-extfile", ext)

        issue("signer", "/CN=Deployment Signer", "ca", "leaf.ext", "rsa:2048")
        issue("inter", "/CN=Fuzz Intermediate", "ca", "ca.ext", "rsa:2048")
        issue("leaf2", "/CN=Signer Under Intermediate", "inter", "leaf.ext", "rsa:2048")
        issue("ecsigner", "/CN=EC Signer", "ca", "leaf.ext", "ec", "-pkeyopt", "ec_paramgen_curve:P-384")
        open(os.path.join(d, "spec.json"), "w").write(json.dumps(SPECS["s3.json"]))
        variants = [
            ("smime-rsa", "smime", "signer", []),
            ("cms-rsa", "cms", "signer", []),
            ("smime-sha1", "smime", "signer", ["-md", "sha1"]),
            ("smime-noattr", "smime", "signer", ["-noattr"]),
            ("cms-keyid", "cms", "signer", ["-keyid"]),
            ("cms-ec-p384", "cms", "ecsigner", ["-md", "sha384"]),
            ("smime-chain", "smime", "leaf2", ["-certfile", "inter.pem"]),
            ("smime-nocerts", "smime", "signer", ["-nocerts"]),
        ]
        for name, tool, signer, extra in variants:
            openssl(d, tool, "-sign", "-nodetach", "-binary", "-in", "spec.json", "-signer", f"{signer}.pem",
                    "-inkey", f"{signer}.key", "-outform", "DER", "-out", f"{name}.der", *extra)
            der = open(os.path.join(d, f"{name}.der"), "rb").read()
            put("pkcs7", name + ".der", der)
        # One PEM seed: the target also reads the input as the payload text itself.
        openssl(d, "smime", "-sign", "-nodetach", "-binary", "-in", "spec.json", "-signer", "signer.pem",
                "-inkey", "signer.key", "-outform", "PEM", "-out", "pem.p7")
        put("pkcs7", "smime-rsa.pem", open(os.path.join(d, "pem.p7"), "rb").read())
        os.makedirs(PKI, exist_ok=True)
        shutil.copy(os.path.join(d, "ca.pem"), os.path.join(PKI, "ca.pem"))
        # A time inside every seed certificate's validity, for the chain check.
        out = subprocess.run(["openssl", "x509", "-in", "ca.pem", "-noout", "-startdate"], cwd=d,
                             check=True, capture_output=True, text=True).stdout
        start = subprocess.run(["date", "-u", "-d", out.split("=", 1)[1].strip(), "+%s"],
                               check=True, capture_output=True, text=True).stdout.strip()
        open(os.path.join(PKI, "now"), "w").write(f"{int(start) + 86400}\n")


# ---------------------------------------------------------------------------------------------
# configuration files

CONFIG_PLAIN = """---
log_aws_wire: false
log_dir: /var/log/aws/codedeploy-agent
pid_dir: /opt/codedeploy-agent/state/.pid
program_name: codedeploy-agent
root_dir: /opt/codedeploy-agent/deployment-root
verbose: true
wait_between_runs: 30
proxy_uri: http://proxy.example:3128
max_revisions: 10
disable_imds_v1: yes
http_read_timeout: 80
kill_agent_max_wait_time_seconds: 7200
on_premises_config_file: /etc/codedeploy-agent/conf/codedeploy.onpremises.yml
enable_deployments_log: on
use_fips_mode: false
deploy_control_endpoint: https://codedeploy-commands.us-east-1.amazonaws.com
s3_endpoint_override: http://127.0.0.1:9000
enable_auth_policy: false
wait_after_throttle_error: 60
wait_after_connection_problem: 5
archive_max_extraction_size: 17179869184
reject_unsafe_permissions_in_bundle: true
ignore_ownership_in_bundle: false
deployment_spec_ca_file: /etc/ssl/ca.pem
scripts_log_max_bytes: 67108864
log_max_bytes: 1000000
log_keep_files: 3
"""


def config_seeds():
    put("config", "packaged.yml", open(os.path.join(REPO, "packaging/files/codedeployagent.yml"), "rb").read())
    put("config", "plain.yml", CONFIG_PLAIN)
    legacy = "".join(":" + line if line[:1].isalpha() else line for line in CONFIG_PLAIN.splitlines(True))
    put("config", "legacy.yml", legacy)
    put("config", "retired-and-lists.yml", ":children: 1\n:plugins:\n  - codedeploy_plugin\nunknown: {a: b}\n")
    put("config", "quoted-nulls.yml", "proxy_uri: ~\nuser: 'deploy'\ngroup: \"ops\"\nmax_revisions: null\n")
    put("config", "bad-values.yml", "max_revisions: many\nverbose: maybe\n")
    put("config", "two-docs.yml", "a: 1\n---\nb: 2\n")
    for name in os.listdir(os.path.join(SEEDS, "config")):
        put("config_legacy", name, open(os.path.join(SEEDS, "config", name), "rb").read())
    put("onprem", "iam-user.yml", "---\nregion: us-east-1\niam_user_arn: arn:aws:iam::111122223333:user/host\n"
        "aws_access_key_id: AKIAEXAMPLE\naws_secret_access_key: secret\n")
    put("onprem", "iam-session.yml", "region: eu-west-1\niam_session_arn: arn:aws:sts::111122223333:assumed-role/r/host\n"
        "aws_credentials_file: /etc/codedeploy-agent/conf/credentials\n")
    put("onprem", "both.yml", "iam_user_arn: a\niam_session_arn: b\nregion: r\n")
    put("onprem", "half.yml", "iam_user_arn: a\nregion: '  '\n")
    put("onprem", "inert.yml", "# nothing\n")


# ---------------------------------------------------------------------------------------------
# host-command wire JSON, scripts.log


def wire_seeds():
    put("wire", "poll.json", json.dumps({"HostCommand": {
        "HostCommandIdentifier": "hc-1", "HostIdentifier": "arn:aws:ec2:us-east-1:1:instance/i-1",
        "DeploymentExecutionId": "de-1", "CommandName": "DownloadBundle", "Nonce": 42}}))
    put("wire", "poll-empty.json", "{}")
    put("wire", "spec.json", json.dumps({"DeploymentSystem": "CodeDeploy", "DeploymentSpecification": {
        "GenericEnvelope": {"Format": "PKCS7/JSON", "Payload": "MIIB"}}}))
    put("wire", "ack.json", '{"CommandStatus": "Pending"}')
    put("wire", "error.json", '{"__type": "com.amazonaws#ThrottlingException", "message": "Rate exceeded"}')
    put("wire", "error-plain.txt", "<html>Service Unavailable</html>")


def scripts_log_seeds():
    put("scripts_log", "scripts.log", """2024-05-01 10:11:12 LifecycleEvent - BeforeInstall
2024-05-01 10:11:12 Script - scripts/before.sh
2024-05-01 10:11:12 [stdout]installing
2024-05-01 10:11:13 [stderr]warning: \xe9
partial line without a stamp
2024-05-01 10:11:14 LifecycleEvent - AfterInstall
2024-05-01 10:11:14 Script - scripts/after.sh
""".encode("latin-1"))


def journal_seeds():
    # The first byte picks the index's home (fuzz_targets/journal.rs): odd sends it to a spill.
    put("journal", "basic", b"\x02/opt/app\n/opt/app/a.txt\nsemanage\0/opt/app/a.txt\n"
        b"/opt/app/sub\n/opt/app/sub/b\nrelative\n\n/opt/app/torn")
    put("journal", "spilled", b"\x01/a\n/a/b\n/a//b/c\n/caf\xe9\n")


def main():
    if os.path.isdir(SEEDS):
        shutil.rmtree(SEEDS)
    appspec_seeds()
    tar_seeds()
    zip_seeds()
    spec_seeds()
    pkcs7_seeds()
    config_seeds()
    wire_seeds()
    scripts_log_seeds()
    journal_seeds()
    total = 0
    for target in sorted(os.listdir(SEEDS)):
        files = os.listdir(os.path.join(SEEDS, target))
        size = sum(os.path.getsize(os.path.join(SEEDS, target, f)) for f in files)
        total += size
        print(f"{target:14} {len(files):3} seeds {size:8} bytes")
    print(f"{'total':14}     {total:8} bytes")


if __name__ == "__main__":
    sys.exit(main())
