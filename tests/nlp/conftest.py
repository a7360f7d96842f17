"""Fixtures and process settings for the intent-classifier tests."""

from __future__ import annotations

import os

# OpenMP threads that spin while waiting make torch on a busy 2-core machine many times slower (measured
# 33 s instead of 7 s for a small training run when another process computes); passive waiting avoids it.
# It only takes effect when torch has not been imported yet in this test process.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
