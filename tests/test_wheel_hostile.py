"""Hostile wheels (issue 6): each is refused before anything is written, with a message that
names the wheel and the entry; the environment stays byte-identical and nothing is written
outside it."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
import unicodedata
import warnings
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from installer.cache import Cache
from installer.errors import WheelError
from installer.models import Environment
from installer.txn import check_environment, install_wheels
from installer.wheel import validate_wheel
from tests.helpers.install_env import make_venv, tree_digest
from tests.helpers.wheels import make_wheel, metadata_text

INIT = {"demo/__init__.py": "X = 1\n"}
W = "demo-1.0-py3-none-any.whl"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Environment, Path]]:
    """One venv for the module (every case must leave it unchanged) and a sentinel folder."""
    root = tmp_path_factory.mktemp("hostile")
    env = make_venv(root / "venv")
    victim = make_wheel(root, "victim", "1.0", files={"victim/__init__.py": "V = 1\n"})
    install_wheels(env, [(victim, True, None)], cache=Cache(root / "cache"))
    sentinel = root / "sentinel"
    sentinel.mkdir()
    yield env, sentinel


def _zinfo(name: str, mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = mode << 16
    return info


def _swap_local_name(path: Path, old: bytes, new: bytes) -> Path:
    data = path.read_bytes()
    i = data.index(b"PK\x03\x04" + data[data.index(b"PK\x03\x04") + 4:][:26])
    j = data.index(old, i)
    path.write_bytes(data[:j] + new + data[j + len(old):])
    return path


def _nfc_nfd(d: Path) -> Path:
    nfc, nfd = unicodedata.normalize("NFC", "é"), unicodedata.normalize("NFD", "é")
    return make_wheel(d, "demo", "1.0", files={f"demo/{nfc}.py": "a", f"demo/{nfd}.py": "b"})


def _record_line(path: str, data: bytes, size: int | None = None) -> str:
    from tests.helpers.wheels import _record_hash

    return f"{path},{_record_hash(data)},{len(data) if size is None else size}"


def _bomb(d: Path) -> Path:
    return make_wheel(d, "demo", "1.0", files={**INIT, "demo/zeros.bin": bytes(101 * 2**20)})


Case = tuple[Callable[[Path], Path], str]

CASES: dict[str, Case] = {
    "dotdot": (lambda d: make_wheel(d, "demo", "1.0", files=INIT,
                                    raw_entries=[("../escape.txt", b"x")]),
               f"{W}: archive member path contains '..' (entry '../escape.txt')"),
    "dotdot-nested": (lambda d: make_wheel(d, "demo", "1.0", files=INIT,
                                           raw_entries=[("demo/../../../x.txt", b"x")]),
                      f"{W}: archive member path contains '..' (entry 'demo/../../../x.txt')"),
    "absolute": (lambda d: make_wheel(d, "demo", "1.0", files=INIT,
                                      raw_entries=[(_zinfo("/tmp/abs.txt", 0o644), b"x")]),
                 f"{W}: archive member has an absolute path (entry '/tmp/abs.txt')"),
    "backslash": (lambda d: make_wheel(d, "demo", "1.0", files=INIT,
                                       raw_entries=[("..\\evil.txt", b"x")]),
                  f"{W}: archive member name contains a backslash (entry '..\\\\evil.txt')"),
    "drive": (lambda d: make_wheel(d, "demo", "1.0", files=INIT,
                                   raw_entries=[("C:/evil.txt", b"x")]),
              f"{W}: archive member has an absolute path (entry 'C:/evil.txt')"),
    "symlink": (lambda d: make_wheel(d, "demo", "1.0", files=INIT, raw_entries=[
        (_zinfo("demo/link", stat.S_IFLNK | 0o777), b"/etc/passwd")]),
                f"{W}: archive member is a symbolic link (entry 'demo/link')"),
    "fifo": (lambda d: make_wheel(d, "demo", "1.0", files=INIT, raw_entries=[
        (_zinfo("demo/fifo", stat.S_IFIFO | 0o644), b"")]),
             f"{W}: archive member is not a regular file (entry 'demo/fifo')"),
    "chardev": (lambda d: make_wheel(d, "demo", "1.0", files=INIT, raw_entries=[
        (_zinfo("demo/dev", stat.S_IFCHR | 0o644), b"")]),
                f"{W}: archive member is not a regular file (entry 'demo/dev')"),
    "duplicate": (lambda d: make_wheel(d, "demo", "1.0", files=INIT,
                                       raw_entries=[("demo/__init__.py", b"import os\n")]),
                  f"{W}: archive has duplicate entries (entry 'demo/__init__.py')"),
    "local-header": (lambda d: _swap_local_name(make_wheel(d, "demo", "1.0", files={
        "demo/__init__.py": "X = 1\n"}), b"demo/__init__.py", b"demo/__init__.pz"),
        f"{W}: archive central directory and local header disagree "
        "(entry 'demo/__init__.py')"),
    "case": (lambda d: make_wheel(d, "demo", "1.0", files={"demo/a.py": "a", "demo/A.py": "b"}),
             f"{W}: archive member names collide after case or Unicode normalization with "
             "'demo/a.py' (entry 'demo/A.py')"),
    "unicode": (_nfc_nfd, f"{W}: archive member names collide after case or Unicode "
                f"normalization with 'demo/{unicodedata.normalize('NFC', 'é')}.py' "
                f"(entry 'demo/{unicodedata.normalize('NFD', 'é')}.py')"),
    "hash": (lambda d: make_wheel(d, "demo", "1.0", files=INIT, record_overrides={
        "demo/__init__.py": "sha256=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}),
             f"{W}: hash does not match RECORD (RECORD "
             "sha256=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA, file "
             "sha256=Crrh4K5yghbuRJk8Wjp1X4scOH2Uf8TE9yyrDkqEIUs) (entry 'demo/__init__.py')"),
    "size": (lambda d: make_wheel(d, "demo", "1.0", files=INIT, omit_from_record=[
        "demo/__init__.py"], extra_record_lines=[_record_line("demo/__init__.py", b"X = 1\n", 99)]),
             f"{W}: size does not match RECORD (RECORD 99, file 6) (entry 'demo/__init__.py')"),
    "weak-hash": (lambda d: make_wheel(d, "demo", "1.0", files=INIT, record_overrides={
        "demo/__init__.py": "md5=abc"}),
        f"{W}: RECORD has an unsupported or weak hash (entry 'demo/__init__.py')"),
    "not-in-record": (lambda d: make_wheel(d, "demo", "1.0", files=INIT,
                                           omit_from_record=["demo/__init__.py"]),
                      f"{W}: file is not listed in RECORD (entry 'demo/__init__.py')"),
    "ghost-record": (lambda d: make_wheel(d, "demo", "1.0", files=INIT, extra_record_lines=[
        _record_line("demo/ghost.py", b"x")]),
        f"{W}: RECORD lists a file that is not in the archive (entry 'demo/ghost.py')"),
    "record-outside": (lambda d: make_wheel(d, "demo", "1.0", files=INIT, extra_record_lines=[
        _record_line("../../../../outside.txt", b"x")]),
        f"{W}: archive member path contains '..' (entry '../../../../outside.txt')"),
    "record-twice": (lambda d: make_wheel(d, "demo", "1.0", files=INIT, extra_record_lines=[
        _record_line("demo/__init__.py", b"X = 1\n")]),
        f"{W}: RECORD lists a file twice (entry 'demo/__init__.py')"),
    "no-record": (lambda d: make_wheel(d, "demo", "1.0", files=INIT, record=False),
                  f"{W}: RECORD is missing (entry 'demo-1.0.dist-info/RECORD')"),
    "dist-info-name": (lambda d: make_wheel(d, "demo", "1.0", files=INIT,
                                            dist_info_name="other-1.0"),
                       f"{W}: the .dist-info directory does not match the file name "
                       "(entry 'other-1.0.dist-info')"),
    "metadata-version": (lambda d: make_wheel(d, "demo", "1.0", files=INIT,
                                              metadata=metadata_text("demo", "2.0")),
                         f"{W}: METADATA says demo 2.0, which does not match the file name "
                         "(entry 'demo-1.0.dist-info/METADATA')"),
    "two-dist-info": (lambda d: make_wheel(d, "demo", "1.0", files={
        **INIT, "extra-1.0.dist-info/METADATA": metadata_text("extra", "1.0")}),
        f"{W}: expected exactly one .dist-info directory, found demo-1.0.dist-info, "
        "extra-1.0.dist-info"),
    "wheel-version": (lambda d: make_wheel(d, "demo", "1.0", files=INIT, wheel_version="2.0"),
                      f"{W}: unsupported Wheel-Version 2.0 (inst supports 1.x) "
                      "(entry 'demo-1.0.dist-info/WHEEL')"),
    "bzip2": (lambda d: _bzip2(d),
        f"{W}: archive member uses an unsupported compression method (entry 'demo/b.txt')"),
    "entry-point-slash": (lambda d: make_wheel(d, "demo", "1.0", files=INIT, entry_points=(
        "[console_scripts]\n../../../evil = demo:main\n")),
        f"{W}: entry point name is not a plain file name (entry '../../../evil')"),
    "entry-point-python": (lambda d: make_wheel(d, "demo", "1.0", files=INIT, entry_points=(
        "[console_scripts]\nPython3.11 = demo:main\n")),
        f"{W}: entry point would replace the environment's own 'Python3.11' "
        "(entry 'Python3.11')"),
    "data-script-python": (lambda d: make_wheel(d, "demo", "1.0", files={
        **INIT, "demo-1.0.data/scripts/python": "#!python\n"}),
        f"{W}: script would replace the environment's own 'python' (entry 'python')"),
    "data-unknown-key": (lambda d: make_wheel(d, "demo", "1.0", files={
        **INIT, "demo-1.0.data/etc/passwd": "x"}),
        f"{W}: unknown .data directory 'etc' (entry 'demo-1.0.data/etc/passwd')"),
    "other-dist-files": (lambda d: make_wheel(d, "demo", "1.0", files={
        "victim/__init__.py": "import os\n"}),
        f"{W}: file belongs to the installed distribution victim "
        "(entry 'lib/python3.11/site-packages/victim/__init__.py')"),
    "bomb": (_bomb, f"{W}: archive member has a suspicious compression ratio "),
}


def _bzip2(d: Path) -> Path:
    path = make_wheel(d, "demo", "1.0", files=INIT)
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr(zipfile.ZipInfo("demo/b.txt"), b"x", compress_type=zipfile.ZIP_BZIP2)
    return path


@pytest.mark.parametrize("case", sorted(CASES))
def test_error_hostile_wheel_refused(case: str, world: tuple[Environment, Path],
                                     tmp_path: Path) -> None:
    env, sentinel = world
    build, message = CASES[case]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name
        wheel = build(tmp_path)
    before = tree_digest(env.prefix)
    cache = Cache(tmp_path / "cache")
    with pytest.raises(WheelError) as exc:
        install_wheels(env, [(wheel, True, None)], cache=cache)
    if case == "bomb":
        assert str(exc.value).startswith(message)
    else:
        assert str(exc.value) == message
    assert tree_digest(env.prefix) == before
    assert list(sentinel.iterdir()) == []
    assert not (tmp_path.parent / "escape.txt").exists()
    assert not list(cache.tmp_dir.iterdir())
    assert check_environment(env) == []


def test_error_validate_wheel_same_message(tmp_path: Path) -> None:
    wheel = CASES["hash"][0](tmp_path)
    with pytest.raises(WheelError) as exc:
        validate_wheel(wheel)
    assert str(exc.value) == CASES["hash"][1]


def test_error_two_wheels_claim_one_file(world: tuple[Environment, Path], tmp_path: Path) -> None:
    env, _ = world
    a = make_wheel(tmp_path, "aaa", "1.0", files={"shared/x.py": "a"})
    b = make_wheel(tmp_path, "bbb", "1.0", files={"shared/x.py": "b"})
    before = tree_digest(env.prefix)
    with pytest.raises(WheelError) as exc:
        install_wheels(env, [(a, True, None), (b, True, None)], cache=Cache(tmp_path / "c"))
    assert str(exc.value) == (
        "bbb-1.0-py3-none-any.whl: file is also installed by aaa-1.0-py3-none-any.whl "
        "(entry 'lib/python3.11/site-packages/shared/x.py')")
    assert tree_digest(env.prefix) == before


def test_error_wheel_overwrites_inst_itself(tmp_path: Path) -> None:
    """inst imported from inside the --target folder; a wheel ships installer/cli.py."""
    import installer

    target = tmp_path / "target"
    target.mkdir()
    src = Path(installer.__file__).parent
    subprocess.run(["cp", "-r", str(src), str(target / "installer")], check=True)
    sentinel = tmp_path / "pwned"
    evil = make_wheel(tmp_path, "evil", "1.0", files={
        "installer/cli.py": f"open({str(sentinel)!r}, 'w').write('x')\n"})
    script = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from installer.environment import query_environment, scheme_for_target
        from installer.errors import WheelError
        from installer.txn import install_wheels
        env = scheme_for_target(query_environment(Path(sys.executable), None),
                                target=Path({str(target)!r}))
        try:
            install_wheels(env, [(Path({str(evil)!r}), True, None)])
        except WheelError as exc:
            print(exc)
        import installer.cli
        """)
    before = tree_digest(target)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(target)}, cwd=tmp_path)
    assert proc.stdout.strip() == (
        "evil-1.0-py3-none-any.whl: file would overwrite inst's own files "
        "(entry 'installer/cli.py')"), proc.stderr
    assert not sentinel.exists()
    after = tree_digest(target)
    assert {k: v for k, v in after.items() if "__pycache__" not in k} == {
        k: v for k, v in before.items() if "__pycache__" not in k}
