from __future__ import annotations


def pytest_addoption(parser):
    parser.addoption(
        "--update-golden",
        action="store_true",
        help="rewrite fixtures/*.expected.py from the current rules (review the diff!)",
    )
