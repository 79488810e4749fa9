"""Chat layer, batch uploads: a .zip of issue files → the files to ingest and the entries refused.

Only the archive's shape is judged here (limits against zip bombs, safe names, links, clashes);
each accepted file is then validated by the engine exactly as a single upload is. Nothing is
extracted to disk: entries are read into memory, flattened to their base names, and the engine
writes them into the corpus folder itself — so no name in an archive can reach outside it.
"""

from __future__ import annotations

import io
import re
import stat
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from retrieval.engine import RefusedFile

MAX_ENTRIES = 5_000
MAX_UNPACKED = 200 * 1024 * 1024  # bytes, all entries together
_READ_CHUNK = 1 << 20
_DRIVE = re.compile(r"^[A-Za-z]:")
# Litter archivers add on their own; skipped without a word.
_LITTER = re.compile(r"(^|/)(__MACOSX/|\.DS_Store$|Thumbs\.db$)")


class BadArchive(ValueError):
    """The whole archive is refused (not a zip, too many entries, too large unpacked)."""


@dataclass
class Batch:
    files: list[tuple[str, bytes]] = field(default_factory=list)  # entry name (the engine flattens it), content
    refused: list[RefusedFile] = field(default_factory=list)


def read_zip(data: bytes, max_entries: int = MAX_ENTRIES, max_unpacked: int = MAX_UNPACKED) -> Batch:
    """The archive's files, flattened, with every entry that cannot be one refused and why."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError) as exc:
        raise BadArchive(f"不是有效的 zip 文件({exc})") from None
    with archive:
        infos = [i for i in archive.infolist() if not i.is_dir() and not _LITTER.search(i.filename)]
        if len(infos) > max_entries:
            raise BadArchive(f"压缩包里有 {len(infos)} 个文件,一次最多 {max_entries} 个")
        declared = sum(i.file_size for i in infos)
        if declared > max_unpacked:
            raise BadArchive(f"解压后 {declared / 2**20:.0f} MB,超过 {max_unpacked // 2**20} MB 的上限")
        batch = Batch()
        taken: dict[str, str] = {}  # flattened name → the entry that has it
        budget = max_unpacked
        for info in infos:
            reason = _entry_problem(info)
            if reason is None:
                flat = PurePosixPath(info.filename.replace("\\", "/")).name
                if flat in taken:
                    reason = f"与 {taken[flat]} 重名(子文件夹会被展平)"
                else:
                    content = _read(archive, info, budget)
                    if content is None:
                        raise BadArchive(f"解压后超过 {max_unpacked // 2**20} MB 的上限")
                    if isinstance(content, str):
                        reason = content
                    else:
                        budget -= len(content)
                        taken[flat] = info.filename
                        batch.files.append((info.filename, content))
                        continue
            batch.refused.append(RefusedFile(info.filename, reason))
        return batch


def _entry_problem(info: zipfile.ZipInfo) -> str | None:
    """Why an entry cannot become a corpus file, judged from its header alone."""
    name = info.filename.replace("\\", "/")
    if name.startswith("/") or _DRIVE.match(name) or ".." in name.split("/"):
        return "路径不安全(绝对路径或含 ..)"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "是符号链接,不是文件"
    if info.flag_bits & 0x1:
        return "已加密,无法读取"
    base = PurePosixPath(name).name
    if base.startswith("."):
        return "隐藏文件"
    if not base.lower().endswith(".txt"):
        return "只接受 .txt 格式的报纸文件"
    return None


def _read(archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: int) -> bytes | str | None:
    """The entry's bytes; a reason when it is unreadable; None when it would pass the size budget
    (headers can lie about sizes, so what is actually inflated is counted)."""
    out = bytearray()
    try:
        with archive.open(info) as f:
            while chunk := f.read(_READ_CHUNK):
                out += chunk
                if len(out) > budget:
                    return None
    except (zipfile.BadZipFile, zlib.error, NotImplementedError, OSError, EOFError) as exc:
        return f"无法解压({exc})"
    return bytes(out)
