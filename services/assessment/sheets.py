"""The assessment's downloads (weekly bulletin, pay sheet) as CSV and XLSX files: one writer of
each for every report, so the reports differ only in their rows."""
import csv
import io
from dataclasses import dataclass
from typing import Any


@dataclass
class Sheet:
    """One worksheet: an optional bold heading line, a bold header row, the rows, an optional bold total row."""

    title: str
    header: list[Any]
    rows: list[list[Any]]
    heading: str | None = None
    total: list[Any] | None = None


def csv_file(rows):
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")  # BOM so Excel opens the Chinese correctly


def xlsx_file(sheets):
    from openpyxl import Workbook
    from openpyxl.styles import Font

    workbook = Workbook()
    for number, sheet in enumerate(sheets):
        worksheet = workbook.active if number == 0 else workbook.create_sheet(sheet.title)
        worksheet.title = sheet.title
        if sheet.heading is not None:
            worksheet.append([sheet.heading])
            worksheet["A1"].font = Font(bold=True, size=14)
        for bold, values in [(True, sheet.header), *((False, row) for row in sheet.rows),
                             *([(True, sheet.total)] if sheet.total is not None else [])]:
            worksheet.append(values)
            if bold:
                for cell in worksheet[worksheet.max_row]:
                    cell.font = Font(bold=True)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
