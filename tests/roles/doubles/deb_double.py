"""A .deb DOUBLE named as someone else's package (NVIDIA's toolkit: no GPU and no NVIDIA package here).

Its binaries are shell scripts that only say what they are; what the real package does is not tested
with it, only that a role installs it (and finds its binaries) like the real one.
"""
import pathlib
import subprocess


def fake_deb(directory, package, version, binaries):
    """Build `<package>_<version>_all.deb` in `directory` (a pathlib.Path); returns its path as a string."""
    root = pathlib.Path(directory) / ("%s-%s" % (package, version))
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(control(package, version))
    (root / "usr" / "bin").mkdir(parents=True)
    for name in binaries:
        path = root / "usr" / "bin" / name
        path.write_text("#!/bin/sh\necho '%s double'\n" % name)
        path.chmod(0o755)
    deb = pathlib.Path(directory) / ("%s_%s_all.deb" % (package, version))
    subprocess.run(["dpkg-deb", "--root-owner-group", "--build", str(root), str(deb)], check=True,
                   capture_output=True, timeout=60)
    return str(deb)


def control(package, version):
    """The package's control stanza (also the start of its entry in an apt repository's Packages file)."""
    return ("Package: %s\nVersion: %s\nArchitecture: all\nMaintainer: tests <tests@example.invalid>\n"
            "Description: test double of NVIDIA's %s (not the real package)\n" % (package, version, package))
