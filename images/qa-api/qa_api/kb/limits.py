"""Input guards of the builder: documents inside the docs dir, size caps, zip bombs.

kb_build checks the same before it starts the container (plugins/module_utils/_kb_inputs.py);
the builder checks again so that it is safe on its own (defence in depth). A zip container is
judged from its central directory: nothing is decompressed before it passes. Python's zipfile
never returns more than a member's declared size, so the declared sizes bound what is extracted.
"""

import os
import stat
import zipfile

DEFAULT_MAX_FILE_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_TOTAL_BYTES = 1024 * 1024 * 1024
DEFAULT_MAX_UNZIPPED_BYTES = 256 * 1024 * 1024
DEFAULT_MAX_ZIP_RATIO = 100
ZIP_EXTENSIONS = (".docx", ".pptx", ".xlsx", ".epub", ".odt")
RATIO_GRACE_BYTES = 1024 * 1024
MAX_ZIP_ENTRIES = 10000
VARIABLES = {
    "max_file_bytes": "knowledge_base_max_file_bytes",
    "max_total_bytes": "knowledge_base_max_total_bytes",
    "max_unzipped_bytes": "knowledge_base_max_unzipped_bytes",
    "max_zip_ratio": "knowledge_base_max_zip_ratio",
}


class LimitError(Exception):
    def __init__(self, message, file=None):
        super().__init__(message)
        self.file = file


def _hint(option):
    return "raise %s (role variable %s) if the document is genuine" % (option, VARIABLES[option])


def open_inside(docs, rel):
    """Open ``docs/rel`` for reading without following a symlink at the end, refusing anything that
    is not a regular file inside ``docs``. Returns ``(binary file, size)``."""
    root = os.path.realpath(docs)
    path = os.path.join(docs, rel)
    real = os.path.realpath(path)
    if os.path.islink(path):
        raise LimitError("%s is a symlink (to %s): symlinks are refused" % (rel, os.readlink(path)), file=rel)
    if os.path.commonpath([root, real]) != root:
        raise LimitError("%s resolves to %s, outside the documents directory: refused" % (rel, real), file=rel)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise LimitError("cannot open: %s" % exc.strerror, file=rel) from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise LimitError("not a regular file: refused", file=rel)
    return os.fdopen(fd, "rb"), info.st_size


def check_size(rel, size, max_file_bytes):
    if size > max_file_bytes:
        raise LimitError("%s is %d bytes, over the cap max_file_bytes=%d (%s)"
                         % (rel, size, max_file_bytes, _hint("max_file_bytes")), file=rel)


def check_total(total, max_total_bytes):
    if total > max_total_bytes:
        raise LimitError("the documents total %d bytes, over the cap max_total_bytes=%d (raise "
                         "max_total_bytes (role variable %s) if the documents are genuine)"
                         % (total, max_total_bytes, VARIABLES["max_total_bytes"]))


def check_zip(handle, rel, max_unzipped_bytes, max_zip_ratio):
    """Judge a zip container (an open binary file) from its central directory only."""
    if os.path.splitext(rel)[1].lower() not in ZIP_EXTENSIONS:
        return
    try:
        with zipfile.ZipFile(handle) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as exc:
        from qa_api.kb.office import not_a_zip  # its wording, with the fix (re-save, remove a password)

        handle.seek(0)
        kind = os.path.splitext(rel)[1].lstrip(".").lower()
        raise LimitError("%s: %s" % (rel, not_a_zip(kind, handle.read(8), exc)), file=rel) from None
    finally:
        handle.seek(0)
    if len(members) > MAX_ZIP_ENTRIES:
        raise LimitError("%s: zip container with %d members, over %d: refused as a zip bomb"
                         % (rel, len(members), MAX_ZIP_ENTRIES), file=rel)
    total = sum(m.file_size for m in members)
    if total > max_unzipped_bytes:
        raise LimitError("%s: zip container expands to %d bytes, over the cap max_unzipped_bytes=%d "
                         "(refused unopened as a possible zip bomb; %s)"
                         % (rel, total, max_unzipped_bytes, _hint("max_unzipped_bytes")), file=rel)
    for member in members:
        if member.file_size <= RATIO_GRACE_BYTES:
            continue
        ratio = member.file_size / max(member.compress_size, 1)
        if ratio > max_zip_ratio:
            raise LimitError("%s: member %s expands %d bytes to %d (ratio %.0f:1), over the cap "
                             "max_zip_ratio=%d (refused unopened as a possible zip bomb; %s)"
                             % (rel, member.filename, member.compress_size, member.file_size, ratio,
                                max_zip_ratio, _hint("max_zip_ratio")), file=rel)
