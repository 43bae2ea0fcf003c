"""The workbook as a reader sees it: LibreOffice (headless) converts it to PDF and PNG; the chart's title, axis
titles and tick labels are in the rendered text. Skips where LibreOffice or poppler is not installed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from kpi.exports import to_xlsx
from kpi.metrics import RowCounts, build_row
from kpi.policies import DEFAULT
from kpi.scoring import rank_rows

SOFFICE, PDFTOTEXT, PDFTOPPM = shutil.which("soffice"), shutil.which("pdftotext"), shutil.which("pdftoppm")
pytestmark = pytest.mark.skipif(not (SOFFICE and PDFTOTEXT and PDFTOPPM),
                                reason="LibreOffice (soffice) and poppler-utils not installed")


def bunched_report() -> dict:
    rows = []
    for i, (replied, owed) in enumerate(((90, 100), (88, 100), (93, 100))):
        counts = RowCounts(received=1200 + i, replied=replied, reply_owed=owed)
        counts.obligations["C_ACCEPT"] = [95 - i, 5 + i, 0]
        rows.append(build_row({"code": f"51080{i}", "name": f"Unit{i}", "level": 3}, counts, DEFAULT))
    total = build_row({"code": "510000", "name": "Province", "level": 2}, RowCounts(received=3603), DEFAULT)
    return {"unit": {"code": "510000", "name": "Province", "level": 2}, "level": 3, "from": "2024-01-01",
            "to": "2024-03-31", "as_of": "2024-06-30T23:59:59+08:00", "scheme": "default",
            "calendar_complete": True, "policy_versions": ["order-20"], "total": total, "rows": rank_rows(rows)}


def test_libreoffice_renders_the_chart_with_axes(tmp_path: Path) -> None:
    book = tmp_path / "report.xlsx"
    book.write_bytes(to_xlsx(bunched_report(), DEFAULT.weights))
    profile = tmp_path / "lo-profile"
    subprocess.run([SOFFICE or "", f"-env:UserInstallation=file://{profile}", "--headless", "--convert-to", "pdf",
                    "--outdir", str(tmp_path), str(book)], check=True, capture_output=True, timeout=180)
    pdf = tmp_path / "report.pdf"
    assert pdf.exists()
    text = subprocess.run([PDFTOTEXT or "", "-layout", str(pdf), "-"], check=True, capture_output=True,
                          text=True).stdout
    assert "1,200" in text and "1,202" in text  # counts with thousands separators
    assert "Unit0" in text and "Unit2" in text  # the category axis labels
    # the value axis is drawn with its tick labels, fitted to the scores (it starts above 0)
    tick_lines = [[int(n) for n in line.split()] for line in text.splitlines()
                  if line.split() and all(n.isdigit() for n in line.split())]
    ticks = max(tick_lines, key=len)
    assert len(ticks) >= 4 and ticks == sorted(ticks) and 0 < ticks[0] <= 92 and ticks[-1] >= 93, text
    subprocess.run([PDFTOPPM or "", "-png", "-r", "60", str(pdf), str(tmp_path / "page")], check=True, timeout=60)
    assert list(tmp_path.glob("page*.png"))
