"""Inventories read from the test images' layers: OS, every package manager, whiteouts."""

from __future__ import annotations

import gzip
import io

import pytest

from cargohold.domain.inventory import Inventory, Package, purl
from cargohold.scanning import LayerError, read_inventory
from cargohold.scanning.gobuildinfo import find_buildinfo
from support.scan_images import (
    IMAGES,
    File,
    Opaque,
    Whiteout,
    compress,
    go_binary,
    tar_layer,
)


def inventory_of(name: str) -> Inventory:
    image = IMAGES[name]()
    return read_inventory(io.BytesIO(blob) for blob, _ in image.layers)


def keys(inventory: Inventory) -> set[tuple[str, str, str]]:
    return {(p.kind, p.name, p.version) for p in inventory.packages}


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_each_image_has_the_expected_os_and_packages(name: str) -> None:
    inventory = inventory_of(name)
    expected = IMAGES[name]().expected
    if expected["os"] is None:
        assert inventory.os is None
    else:
        assert inventory.os is not None
        assert (inventory.os.id, inventory.os.version_id) == (
            expected["os"]["id"],
            expected["os"]["version_id"],
        )
    found = keys(inventory)
    for kind, package, version in expected["packages"]:
        assert (kind, package, version) in found
    for kind, package in expected["absent"]:
        assert not any(k == kind and n == package for k, n, _ in found)


def test_dpkg_keeps_source_package_and_version() -> None:
    by_name = {p.name: p for p in inventory_of("debian").packages}
    assert by_name["libc6"].source_name == "glibc"
    assert by_name["libc6"].source_version == "2.36-9+deb12u1"
    assert by_name["openssl"].source_name == "openssl"
    assert by_name["libc6"].arch == "amd64"
    assert by_name["libc6"].location == "var/lib/dpkg/status"


def test_dpkg_source_with_its_own_version() -> None:
    status = (
        b"Package: bsdutils\nStatus: install ok installed\n"
        b"Source: util-linux (2.38.1-5)\nVersion: 1:2.38.1-5+b1\n"
    )
    layer, _ = compress(tar_layer([File("var/lib/dpkg/status", status)]), "gzip")
    (package,) = read_inventory([io.BytesIO(layer)]).packages
    assert (package.source_name, package.source_version) == ("util-linux", "2.38.1-5")
    assert package.version == "1:2.38.1-5+b1"


def test_status_d_skips_md5sums() -> None:
    packages = [p for p in inventory_of("languages").packages if p.kind == "deb"]
    assert [(p.name, p.location) for p in packages] == [("libc6", "var/lib/dpkg/status.d/libc6")]


def test_apk_origin_is_the_source() -> None:
    by_name = {p.name: p for p in inventory_of("alpine").packages}
    assert by_name["ssl_client"].source_name == "busybox"
    assert by_name["musl"].source_name == "musl"


def test_rpm_epoch_and_source_rpm() -> None:
    by_name = {p.name: p for p in inventory_of("rocky").packages}
    assert by_name["openssl-libs"].version == "1:3.0.7-24.el9"
    assert by_name["openssl-libs"].source_name == "openssl"
    assert by_name["bash"].arch == "x86_64"


def test_go_binary_only_when_executable() -> None:
    golang = [p for p in inventory_of("rocky").packages if p.kind == "golang"]
    assert {p.location for p in golang} == {"usr/local/bin/app"}


def test_go_buildinfo_skips_unaligned_magic_and_applies_replacements() -> None:
    binary = go_binary("go1.22.0", "example.com/x", [("golang.org/x/net", "v0.1.0")])
    info = find_buildinfo(io.BytesIO(binary))
    assert info is not None
    assert info.go_version == "go1.22.0"
    assert info.deps == (("golang.org/x/net", "v0.1.0"),)


def test_go_buildinfo_found_across_read_boundaries() -> None:
    binary = go_binary("go1.22.0", "example.com/x", [("golang.org/x/net", "v0.1.0")])
    stream = io.BytesIO(b"\0" * (1 << 16) + binary)

    class Trickle:
        """Reads of an odd size, so the magic straddles two reads."""

        def read(self, size: int = -1) -> bytes:
            return stream.read(4093)

    info = find_buildinfo(Trickle())
    assert info is not None and info.deps == (("golang.org/x/net", "v0.1.0"),)


def test_nested_jars_are_read() -> None:
    java = {p.name: p for p in inventory_of("languages").packages if p.kind == "maven"}
    assert java["org.apache.logging.log4j:log4j-api"].location == (
        "opt/app/app.jar!/BOOT-INF/lib/log4j-api-2.14.1.jar"
    )


def test_whiteout_in_the_same_layer_hides_only_lower_layers() -> None:
    lower = tar_layer([File("app/node_modules/a/package.json", b'{"name":"a","version":"1.0.0"}')])
    upper = tar_layer(
        [
            Opaque("app/node_modules"),
            File("app/node_modules/b/package.json", b'{"name":"b","version":"2.0.0"}'),
            Whiteout("app/node_modules/c"),
        ]
    )
    inventory = read_inventory([io.BytesIO(lower), io.BytesIO(upper)])
    assert keys(inventory) == {("npm", "b", "2.0.0")}


def test_a_later_file_replaces_an_earlier_one() -> None:
    first = tar_layer([File("lib/apk/db/installed", b"P:a\nV:1-r0\no:a\n")])
    second = tar_layer([File("lib/apk/db/installed", b"P:a\nV:2-r0\no:a\n")])
    inventory = read_inventory([io.BytesIO(first), io.BytesIO(second)])
    assert keys(inventory) == {("apk", "a", "2-r0")}


def test_os_release_falls_back_to_debian_version() -> None:
    layer = tar_layer([File("etc/debian_version", b"11.9\n")])
    inventory = read_inventory([io.BytesIO(layer)])
    assert inventory.os is not None and (inventory.os.id, inventory.os.major) == ("debian", "11")


def test_a_layer_that_is_not_a_tar_fails() -> None:
    with pytest.raises(LayerError):
        read_inventory([io.BytesIO(gzip.compress(b"not a tar archive" * 100))])


def test_inventory_round_trips_through_json() -> None:
    inventory = inventory_of("debian")
    assert Inventory.from_json(inventory.to_json()) == inventory


def test_package_urls() -> None:
    inventory = inventory_of("debian")
    libc = next(p for p in inventory.packages if p.name == "libc6")
    assert (
        purl(libc, inventory.os)
        == "pkg:deb/debian/libc6@2.36-9%2Bdeb12u1?arch=amd64&distro=debian-12"
    )
    assert purl(Package("maven", "org.apache:x", "1.0")) == "pkg:maven/org.apache/x@1.0"
    assert purl(Package("npm", "@types/node", "20.8.0")) == "pkg:npm/%40types/node@20.8.0"
    assert (
        purl(Package("golang", "golang.org/x/net", "v0.10.0"))
        == "pkg:golang/golang.org/x/net@v0.10.0"
    )
    assert purl(Package("pypi", "Jinja2", "3.1.2")) == "pkg:pypi/jinja2@3.1.2"
