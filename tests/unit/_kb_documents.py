# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Hostile documents for the knowledge base tests, built on the fly."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import zipfile

_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/word/document.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>')
_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
    'officeDocument" Target="word/document.xml"/></Relationships>')


def write_zip_bomb_docx(path, expanded_bytes=1024 * 1024 * 1024, member_name='word/document.xml'):
    """A DOCX whose word/document.xml is ``expanded_bytes`` of zeros (1 GiB deflates to about 1 MB);
    another ``member_name`` (ppt/slides/slide1.xml, ...) makes the bomb of another zip type."""
    block = b'\0' * (4 * 1024 * 1024)
    with zipfile.ZipFile(str(path), 'w', zipfile.ZIP_DEFLATED) as archive:
        archive.writestr('[Content_Types].xml', _CONTENT_TYPES)
        archive.writestr('_rels/.rels', _RELS)
        with archive.open(member_name, 'w', force_zip64=True) as member:
            left = expanded_bytes
            while left > 0:
                member.write(block[:min(left, len(block))])
                left -= len(block)
    return path
