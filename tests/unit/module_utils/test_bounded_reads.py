"""read_bounded: the one reader of the small files users name (keys, tokens, passphrases, groups,
metrics textfiles), shared by the modules and the auth server."""
from __future__ import annotations

import os
import threading

import pytest

from okera_auth.module_utils import metrics
from okera_auth.module_utils.errors import InputFileError, MetricsError
from okera_auth.module_utils.files import read_bounded


def test_a_file_at_the_bound_is_read_and_one_byte_more_is_refused(tmp_path):
    exact = tmp_path / "exact"
    exact.write_bytes(b"x" * 1000)
    assert read_bounded(str(exact), "token", limit=1000) == b"x" * 1000
    exact.write_bytes(b"x" * 1001)
    with pytest.raises(InputFileError, match=r"^token file %s is larger than 1000 bytes" % exact):
        read_bounded(str(exact), "token", limit=1000)


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/null"])
def test_a_device_is_not_a_regular_file(device):
    with pytest.raises(InputFileError, match=r"^private key file %s is not a regular file" % device):
        read_bounded(device, "private key")


def test_a_symlink_to_a_device_is_refused(tmp_path):
    (tmp_path / "key.pem").symlink_to("/dev/zero")
    with pytest.raises(InputFileError, match="is not a regular file"):
        read_bounded(str(tmp_path / "key.pem"), "private key")


def test_a_fifo_without_a_writer_is_refused_without_waiting(tmp_path):
    fifo = tmp_path / "key.pem"
    os.mkfifo(fifo)
    outcome = []

    def reader() -> None:
        try:
            read_bounded(str(fifo), "private key")
        except InputFileError as error:
            outcome.append(str(error))

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    thread.join(20)
    if thread.is_alive():  # unblock the reader so the session can end
        os.close(os.open(fifo, os.O_RDWR))
    assert outcome == ["private key file %s is not a regular file: give the private key file itself" % fifo]


def test_a_metrics_textfile_that_is_a_device_is_refused(tmp_path):
    (tmp_path / "x.prom").symlink_to("/dev/zero")
    target = metrics.Target("c", "okera", "secrets")
    with pytest.raises(MetricsError, match="is not a regular file"):
        metrics.update_textfile(str(tmp_path / "x.prom"), target, lambda previous: [])


def test_a_long_path_is_named_and_one_shaped_like_a_key_is_not(tmp_path, rsa_key_pem):
    # Test and Secret-volume paths run past 80 characters with long words; a message still names them.
    deep = tmp_path / ("a_directory_with_a_long_descriptive_name_of_the_kind_tests_make" * 2) / "missing.pem"
    with pytest.raises(InputFileError) as refused:
        read_bounded(str(deep), "private key")
    assert str(refused.value) == "private key file %s does not exist" % deep
    pasted = rsa_key_pem.decode()
    with pytest.raises(InputFileError) as refused:
        read_bounded(pasted, "private key")
    assert pasted.splitlines()[1] not in str(refused.value) and "not shown" in str(refused.value)
