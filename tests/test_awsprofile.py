"""`awsprofile.read_profile`: a profile as the AWS files hold it, whoever wrote it."""

from __future__ import annotations

from pathlib import Path

from cargohold import awsprofile


def files(tmp_path: Path) -> dict[str, str]:
    return {
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials"),
        "AWS_CONFIG_FILE": str(tmp_path / "config"),
    }


def test_a_profile_cargohold_wrote_reads_back(tmp_path: Path) -> None:
    environ = files(tmp_path)
    written = awsprofile.AwsCredentials("AKIAEXAMPLE", "secret", "eu-west-3", "http://h:1", "/d")
    awsprofile.write_profile(written, profile="reg", environ=environ)
    saved = awsprofile.read_profile("reg", environ=environ)
    assert saved == awsprofile.SavedProfile("reg", "AKIAEXAMPLE", "eu-west-3", "http://h:1", "/d")
    assert awsprofile.read_profile("other", environ=environ) is None


def test_a_profile_written_by_hand_reads_back(tmp_path: Path) -> None:
    environ = files(tmp_path)
    (tmp_path / "credentials").write_text(
        "# mine\n[cargohold]\naws_access_key_id = AKIAHAND\naws_secret_access_key = x\n"
    )
    (tmp_path / "config").write_text(
        "[profile cargohold]\nregion = us-west-2\nendpoint_url = http://elsewhere:9\n"
    )
    saved = awsprofile.read_profile("cargohold", environ=environ)
    assert saved == awsprofile.SavedProfile(
        "cargohold", "AKIAHAND", "us-west-2", "http://elsewhere:9", None
    )


def test_missing_or_unreadable_files_hold_no_profile(tmp_path: Path) -> None:
    environ = files(tmp_path)
    assert awsprofile.read_profile("cargohold", environ=environ) is None
    (tmp_path / "credentials").write_bytes(b"\xff\xfe not text")
    assert awsprofile.read_profile("cargohold", environ=environ) is None
